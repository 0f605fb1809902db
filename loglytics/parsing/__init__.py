"""Parse raw log lines into (timestamp, level, component, message) by format detection.

No per-source configuration: a :class:`LineParser` detects the layout from the
first lines of a source and then pays one compiled regex match per line.
"""

from loglytics.parsing.formats import FORMATS
from loglytics.parsing.levels import normalise_level
from loglytics.parsing.model import ParsedColumns, ParsedLine
from loglytics.parsing.parser import LineParser, parse_line

__all__ = ["FORMATS", "LineParser", "ParsedColumns", "ParsedLine", "normalise_level", "parse_line"]
