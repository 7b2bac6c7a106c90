"""The course's maintenance tools, for instructors and maintainers: ``python -m course_tools``
runs the notebooks headless, writes RESULTS.md's results table, reports what is cached, packs
trained checkpoints for a class, makes the student release and builds the HTML book. The
notebooks never import this package; what they use is in ``course_utils``."""
