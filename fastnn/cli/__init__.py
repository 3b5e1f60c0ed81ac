"""The pieces of the ``fastnn`` command line that work on tables: reading a file into columns
(:mod:`fastnn.cli.tables`), inferring what each column is (:mod:`fastnn.cli.inference`), and the
``train`` / ``predict`` / ``evaluate`` commands (:mod:`fastnn.cli.commands`).
``fastnn/__main__.py`` holds the argument parser."""
