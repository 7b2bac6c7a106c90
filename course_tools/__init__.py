"""The course's own tooling, for instructors and maintainers (``python -m course_tools``): running
the notebooks headless, RESULTS.md's results table, what is cached, packing trained checkpoints
for a class, the student release, the book, and the export of notebook cells into
``course_utils.methods``. The notebooks never import it; what they use is in ``course_utils``."""
