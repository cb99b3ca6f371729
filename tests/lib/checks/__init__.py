"""Named checks of the integration tests, one module per topic (run by tests/lib/check).

Each check is a function whose docstring says what it asserts; its arguments are the strings
the script passes (file names, tags, numbers to convert).  Helpers shared by several checks of
a module start with an underscore; tests/lib/pcbjson.py keeps the report-wide checks (schema,
migration, local, failed, get), importable here as `pcbjson`.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
