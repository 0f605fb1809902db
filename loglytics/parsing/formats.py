"""The named layouts and the order detection tries them in.

Order matters: specific layouts (more fixed fields) come before generic ones
that would also match their lines (e.g. ``iso`` matches every log4j line but
loses the component), so the first match during detection is the most
informative one.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from loglytics.parsing.jsonlines import JsonLayout
from loglytics.parsing.layouts import Layout, LevelSource, RegexLayout
from loglytics.parsing.logfmt import LogfmtLayout
from loglytics.parsing.timestamps import (
    compact_seconds,
    ctime_seconds,
    epoch_seconds,
    iso_seconds,
    slash_seconds,
    syslog_seconds,
)

# Upper-case level words as Java/Python/oslo loggers print them. An explicit
# list (rather than [A-Z]+) keeps detection from mistaking a word for a level.
_LVL = (
    r"(?P<level>INFO|WARN|WARNING|ERROR|DEBUG|TRACE|FATAL|SEVERE|CRITICAL|NOTICE"
    r"|FINE|FINER|FINEST|CONFIG)"
)
_LVL_ANYCASE = (
    r"(?P<level>(?i:info|warn|warning|error|err|debug|trace|fatal|severe|critical|crit"
    r"|notice|emerg|alert))"
)
_ISO_DATE = r"\d{4}-\d\d-\d\d"
_HMS = r"\d\d:\d\d:\d\d"
_FRAC = r"(?:[.,](?P<frac>\d{1,9}))?"
# Java ``%c``: a dotted class/logger name; ``[...]`` is a ``%t`` thread name.
_JAVA_TAIL = (
    r"\s+(?:\[(?P<thread>[^\]]{0,256})\]\s+)?"
    r"(?P<component>[^\s:\[\]]{1,256}):(?:\s+|$)(?P<message>.*)"
)

_LAYOUTS: Final[tuple[Layout, ...]] = (
    JsonLayout(),
    LogfmtLayout(),
    RegexLayout(
        "rfc5424",
        r"<(?P<pri>\d{1,3})>1 (?:-|(?P<ts>" + _ISO_DATE + "T" + _HMS + r")(?:\.(?P<frac>\d{1,9}))?"
        r"(?P<tz>Z|[+-]\d\d:\d\d)) \S{1,255} (?:-|(?P<component>\S{1,48})) \S{1,128} \S{1,32} "
        r"(?:-|(?:\[(?:[^\]\\]|\\.){0,4096}\])+)(?: (?P<message>.*))?",
        iso_seconds,
        LevelSource.PRI,
        "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed",
    ),
    RegexLayout(
        "syslog",
        r"(?:<(?P<pri>\d{1,3})>)?(?P<ts>[A-Z][a-z]{2} [ \d]\d " + _HMS + r") \S{1,255}\s+"
        r"(?:(?P<component>[^:\[\s][^:\[]{0,63})(?:\[[^\]]{0,32}\])?"
        r"(?: \([^()]{0,256}\))?:(?:\s+|$))?(?P<message>.*)",
        syslog_seconds,
        LevelSource.PRI,
        "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass; user unknown",
    ),
    RegexLayout(
        "apache_error",
        r"\[(?P<ts>[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d " + _HMS + r")(?:\.(?P<frac>\d{1,9}))? "
        r"(?P<year>\d{4})\] \[(?:(?P<component>[^\]:\s]{1,64}):)?(?P<level>[a-z]{1,8}\d?)\]"
        r"(?: \[pid [^\]]{1,64}\])?\s*(?P<message>.*)",
        ctime_seconds,
        LevelSource.FIELD,
        "[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 123] AH00124: request exceeded limit",
    ),
    RegexLayout(
        "bgl",
        # The leading alert-label column is optional: shippers usually drop it.
        r"(?:\S{1,64} )?(?P<ts>\d{9,11}) \d{4}\.\d\d\.\d\d \S{1,128} "
        r"\d{4}-\d\d-\d\d-\d\d\.\d\d\.\d\d\.(?P<frac>\d{1,9}) \S{1,128} [A-Z_]{1,32} "
        r"(?P<component>[A-Z_]{1,32}) (?P<level>[A-Z]{1,16})(?:\s+(?P<message>.*))?",
        epoch_seconds,
        LevelSource.FIELD,
        "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 "
        "R02-M1-N0-C:J12-U11 RAS KERNEL INFO instruction cache parity error corrected",
    ),
    RegexLayout(
        "oslo",
        r"(?:\S{1,256} )?(?P<ts>"
        + _ISO_DATE
        + " "
        + _HMS
        + r")"
        + _FRAC
        + r" \d{1,10} "
        + _LVL
        + r" "
        r"(?P<component>[\w.$-]{1,256}) \[[^\]]{0,1024}\]\s*(?P<message>.*)",
        iso_seconds,
        LevelSource.FIELD,
        "2017-05-16 00:00:00.008 25746 INFO nova.osapi_compute.wsgi.server [req-38101a0b - - -] "
        "GET /v2",
    ),
    RegexLayout(
        "log4j_dash",
        r"(?P<ts>" + _ISO_DATE + " " + _HMS + r")" + _FRAC + r" - " + _LVL + r"\s+"
        r"\[(?P<thread>.{0,512}?)(?::(?P<component>[\w$.]{1,256})@\d{1,9})?\] -\s*(?P<message>.*)",
        iso_seconds,
        LevelSource.FIELD,
        "2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:"
        "FastLeaderElection@774] - Notification time out: 3200",
    ),
    RegexLayout(
        "python",
        r"(?P<ts>"
        + _ISO_DATE
        + " "
        + _HMS
        + r")"
        + _FRAC
        + r" - (?P<component>\S{1,256}) - "
        + _LVL
        + r" - (?P<message>.*)",
        iso_seconds,
        LevelSource.FIELD,
        "2024-05-01 12:00:00,123 - app.db - WARNING - slow query",
    ),
    RegexLayout(
        "hdfs",
        r"(?P<ts>\d{6} \d{6})" + _FRAC + r" (?:\d{1,10} )?" + _LVL + _JAVA_TAIL,
        compact_seconds,
        LevelSource.FIELD,
        "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 terminating",
    ),
    RegexLayout(
        "cri",
        # Kubernetes container runtime (CRI) log files: stamp, stream, full/partial tag.
        r"(?P<ts>" + _ISO_DATE + "T" + _HMS + r")(?:\.(?P<frac>\d{1,9}))?(?P<tz>Z|[+-]\d\d:\d\d) "
        r"(?:stdout|stderr) [FP] (?P<message>.*)",
        iso_seconds,
        LevelSource.GUESS,
        "2026-12-01T10:00:00.123456789Z stdout F GET /healthz 200",
    ),
    RegexLayout(
        "log4j",
        r"(?P<ts>" + _ISO_DATE + "[ T]" + _HMS + r")" + _FRAC + r"(?P<tz>Z|[+-]\d\d:?\d\d)?"
        r"\s+(?:\d{1,10}\s+)?" + _LVL + _JAVA_TAIL,
        iso_seconds,
        LevelSource.FIELD,
        "2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: "
        "Created",
    ),
    RegexLayout(
        "log4j_short",
        r"(?P<ts>\d\d(?:\d\d)?/\d\d/\d\d " + _HMS + r")" + _FRAC + r"\s+" + _LVL + _JAVA_TAIL,
        slash_seconds,
        LevelSource.FIELD,
        "17/06/09 20:10:40 INFO spark.SecurityManager: Changing view acls to: yarn,curi",
    ),
    RegexLayout(
        "iso",
        r"\[?(?P<ts>"
        + _ISO_DATE
        + "[T ]"
        + _HMS
        + r")"
        + _FRAC
        + r"(?:\s?(?P<tz>Z|[+-]\d\d(?::?\d\d)?))?\]?"
        r"(?:\s+[\[(]?" + _LVL_ANYCASE + r"[\])]?:?(?=\s|$))?\s*(?P<message>.*)",
        iso_seconds,
        LevelSource.FIELD,
        "2024-05-01T12:00:00.123Z ERROR disk full",
    ),
    RegexLayout(
        "python_basic",
        r"(?P<level>CRITICAL|FATAL|ERROR|WARNING|WARN|INFO|DEBUG):(?P<component>[^:\s]{1,256}):(?P<message>.*)",
        None,
        LevelSource.FIELD,
        "WARNING:root:disk almost full",
    ),
)

FORMATS: Final = MappingProxyType({layout.name: layout for layout in _LAYOUTS})
"""Every named layout, by name, in detection order."""

DETECTION_ORDER: Final = _LAYOUTS
