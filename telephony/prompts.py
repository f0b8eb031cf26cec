"""What the gateway itself says when the dialogue server cannot: kept here so it works with every part down."""

APOLOGY = (
    "I'm sorry, I'm having technical trouble right now. I'm putting you through to one of my colleagues. Please hold."
)
FALLBACK_GREETING = "Hello, you are talking to an automated assistant. How can I help you?"
