"""Analytics and the web pages around calls: the call store (SQLAlchemy + Alembic), logins, the agent screen."""
