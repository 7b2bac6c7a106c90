"""The methods the notebooks teach, as the notebooks write them: each module here is
generated from one notebook's cells marked ``#| export <module>`` (``course_tools.export``),
so what a student reads in the notebook is what the recipes train and what later notebooks
import. Edit the notebook, never these files."""
