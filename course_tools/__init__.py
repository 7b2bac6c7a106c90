"""The course's own tooling, for instructors and maintainers: running notebooks headless,
the student release, the book, the teaching kit, and the export of notebook cells into
``course_utils.methods``. Students never import it; the notebooks import ``course_utils``."""
