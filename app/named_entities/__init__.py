"""The people, places, organizations and products memories name: mem0's entity collection."""
