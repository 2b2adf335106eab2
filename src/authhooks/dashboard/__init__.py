"""The management dashboard: admin sign-in sessions (and, served at /dashboard, the
single-page app that talks to the management API with the tokens they give)."""
