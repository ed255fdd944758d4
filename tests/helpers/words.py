"""A small vocabulary the training tests build their tiny corpora from."""

WORDS = [
    "apple",
    "river",
    "stone",
    "cloud",
    "music",
    "paper",
    "light",
    "green",
    "table",
    "window",
    "silver",
    "market",
    "engine",
    "garden",
]
