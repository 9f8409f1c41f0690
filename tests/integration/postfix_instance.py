"""
postfix_instance.py - the configuration of a private Postfix instance
(Debian's package, its own config_directory and queue_directory under
one directory, smtpd on a loopback port, relaying to a loopback next
hop), shared by the integration tests that run Postfix as a peer and by
contrib/bench/pfqueue.py.
"""

import os
from pathlib import Path


def write_config(base, hostname, port, relay_port, extra=""):
    """base/etc/main.cf and master.cf of an instance whose smtpd listens
    on 127.0.0.1:port and relays everything to [127.0.0.1]:relay_port;
    extra is appended to main.cf.  Makes base/etc, base/spool and
    base/data; returns (etc, spool, maillog) as paths."""
    base = Path(base)
    etc, spool, maillog = base / "etc", base / "spool", base / "maillog"
    for d in (etc, spool, base / "data"):
        d.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o755)
    (etc / "main.cf").write_text(f"""\
compatibility_level = 3.6
myhostname = {hostname}
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:{relay_port}
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_tls_security_level = none
smtp_tls_security_level = none
smtp_dns_support_level = disabled
smtp_host_lookup = native
alias_maps =
alias_database =
local_recipient_maps =
queue_directory = {spool}
data_directory = {base}/data
maillog_file = {maillog}
maillog_file_prefixes = {base}
""" + extra)
    lines = []
    for line in Path("/etc/postfix/master.cf").read_text().splitlines():
        if line.split()[:2] == ["smtp", "inet"]:
            line = "127.0.0.1:%d inet n - n - - smtpd" % port
        lines.append(line)
    if not any(line.startswith("127.0.0.1:%d " % port) for line in lines):
        raise RuntimeError("no smtp inet line in /etc/postfix/master.cf")
    (etc / "master.cf").write_text("\n".join(lines) + "\n")
    return etc, spool, maillog
