"""What the gateway itself says (turn-taking and faults): kept here so it works with every other part down."""

APOLOGY = (
    "I'm sorry, I'm having technical trouble right now. I'm putting you through to one of my colleagues. Please hold."
)
FALLBACK_GREETING = "Hello, you are talking to an automated assistant. How can I help you?"
NO_INPUT_REPROMPT = "Sorry, I didn't hear anything. Please tell me in a few words what your call is about."
NOT_CAUGHT_REPROMPT = "Sorry, I didn't catch that. Please tell me in a few words what your call is about."
NO_INPUT_KEYPAD = "If it's easier, you can use your keypad."
NO_INPUT_HANDOFF = "I can't hear you, so I'm putting you through to one of my colleagues. Please hold."
KEY_NOT_IN_MENU = "Sorry, that key is not in the menu."
CONFIRM = 'I think you said: "{text}". Is that right?'
CONFIRM_DENIED = "Sorry about that. Please tell me again, in a few words."

# The words that tell the caller they are talking to a machine (DOMAIN.md): the greeting cannot be interrupted
# before the sentence that says them has been heard.
DISCLOSURE = "automated assistant"
# Said by Twilio (<Say>) when even the fallback number did not answer: the last thing before the line closes.
LINES_BUSY = "I'm sorry, all our lines are busy right now. Please call again later. Goodbye."
