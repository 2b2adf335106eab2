"""Users of the database connection: passwords, the policy, storage, signup, login."""
