"""Log lines written by Squid 6.13 and c-icap 0.5 with the data plane's formats (captured from
the real daemons), for the tests of the record format and its parsers."""

from __future__ import annotations

import re

# Written by Squid 6.13 (trixie) with formats.SQUID_ACCESS_LOGFORMAT.
SQUID_CLEAN = (
    '{"v":1,"t":"1795708981.149","start":"1795708981.145",'
    '"rid":"1795708981.145-127.0.0.1-54","icap":"1795708981.145-127.0.0.1-54",'
    '"client":"127.0.0.1","user":"-","method":"GET","url":"http://clean.test/files/hello.txt",'
    '"status":"200","out":"275","in":"136","ms":"4","squid":"TCP_MISS","hier":"HIER_DIRECT",'
    '"ctype":"application/octet-stream","decision":"allow","category":"-","list":"default",'
    '"policy":"tenant","err":"-","av":"-","sni":"-","bump":"-"}'
)
SQUID_EICAR = (
    '{"v":1,"t":"1795708981.201","start":"1795708981.159",'
    '"rid":"1795708981.159-127.0.0.1-58","icap":"1795708981.159-127.0.0.1-58",'
    '"client":"127.0.0.1","user":"alice","method":"GET","url":"http://clean.test/files/eicar.com",'
    '"status":"403","out":"804","in":"136","ms":"42","squid":"TCP_MISS","hier":"HIER_DIRECT",'
    '"ctype":"text/html","decision":"allow","category":"-","list":"default","policy":"tenant",'
    '"err":"-","av":"Type=0; Resolution=2; Threat=Custom.Test.EICAR-NDB.UNOFFICIAL;",'
    '"sni":"-","bump":"-"}'
)
SQUID_CATEGORY_BLOCK = (
    '{"v":1,"t":"1795708981.213","start":"1795708981.213",'
    '"rid":"1795708981.213-127.0.0.1-61","icap":"-","client":"10.0.0.7","user":"-",'
    '"method":"GET","url":"http://www.casino.test/x?","status":"403","out":"656","in":"138",'
    '"ms":"0","squid":"TCP_DENIED","hier":"HIER_NONE","ctype":"text/html;charset=utf-8",'
    '"decision":"block","category":"gambling","list":"category","policy":"tenant",'
    '"err":"ERR_BLOCKED_CATEGORY","av":"-","sni":"-","bump":"-"}'
)
SQUID_CONNECT = (
    '{"v":1,"t":"1795708981.243","start":"1795708981.233",'
    '"rid":"1795708981.233-127.0.0.1-65","icap":"-","client":"127.0.0.1","user":"-",'
    '"method":"CONNECT","url":"clean.test:443","status":"200","out":"0","in":"112","ms":"9",'
    '"squid":"NONE_NONE","hier":"HIER_DIRECT","ctype":"-","decision":"allow","category":"-",'
    '"list":"default","policy":"tenant","err":"-","av":"-","sni":"clean.test","bump":"bump"}'
)
# Written by c-icap 0.5.10 with formats.CICAP_LOGFORMAT (user name base64 from Squid).
CICAP_OPTIONS = "1795708981\t-\t-\t-\tOPTIONS\t200\t-\t-\t0\t0\t-"
CICAP_CLEAN = (
    "1795708981\t1795708981.145-127.0.0.1-54\t127.0.0.1\t-\tRESPMOD\t204\tpassed\t-\t27\t0\t"
    "http://clean.test/files/hello.txt"
)
CICAP_EICAR = (
    "1795708981\t1795708981.159-127.0.0.1-58\t127.0.0.1\tYWxpY2U=\tRESPMOD\t200\tblocked\t"
    "Custom.Test.EICAR-NDB.UNOFFICIAL\t68\t497\thttp://clean.test/files/eicar.com"
)
CICAP_UPLOAD = (
    "1795708981\t1795708981.304-127.0.0.1-69\t127.0.0.1\t-\tREQMOD\t200\tblocked\t"
    "Custom.Test.EICAR-NDB.UNOFFICIAL\t68\t498\thttp://clean.test/upload/eicar.com"
)
# Written by Squid's icap_log with formats.SQUID_SANDBOX_LOGFORMAT.
SQUID_SANDBOX = (
    '{"v":1,"t":"1795709020.282","icap":"1795708981.145-127.0.0.1-54","client":"127.0.0.1",'
    '"user":"-","method":"GET","url":"http://clean.test/files/hello.txt",'
    '"service":"sandbox_resp","icapMethod":"RESPMOD","icapStatus":"204","ms":"2",'
    '"threat":"-","violations":"-"}'
)

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def squid_quote(text: str) -> str:
    """Squid's %" encoding: quote and backslash escaped, CR LF TAB as two characters."""
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    return out.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
