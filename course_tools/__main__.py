"""``python -m course_tools``: the course's command line (see :mod:`course_tools.course`)."""

import sys

from course_tools.course import main

sys.exit(main())
