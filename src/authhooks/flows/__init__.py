"""Running the points' flows of hooks: which hooks are live in this process."""
