-- Rasa's tracker store lives beside the call store, in a database of its own.
CREATE DATABASE rasa OWNER helpline;
