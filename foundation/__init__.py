"""The ground every part of Helpline stands on: settings, the domain vocabulary, redaction. Imports nothing of ours."""
