"""Whether the retrieved evidence answers the question (see ``base``)."""
