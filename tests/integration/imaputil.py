"""What the IMAP integration tests share: a TLS session, an SMTP delivery,
and raw commands whose answers may carry literals (imaplib has no method
for NOTIFY, URLFETCH, PREVIEW ...)."""
import imaplib
import re
import smtplib

LITERAL = re.compile(rb"~?\{(\d+)\}\r\n$")


def imaps(srv):
    return imaplib.IMAP4_SSL("127.0.0.1", srv.ports["IMAPS"], ssl_context=srv.ssl_context())


def login(srv, user="bob@example.test", pw="bobpw"):
    m = imaps(srv)
    m.login(user, pw)
    return m


def deliver(srv, msg, to="bob@example.test"):
    with smtplib.SMTP("127.0.0.1", srv.ports["SMTP"], timeout=10) as s:
        s.sendmail("alice@remote.test", [to], msg)


def read_response(m):
    """One response line with the literals it announces (b"" at EOF)."""
    ln = m.readline()
    while ln:
        lit = LITERAL.search(ln)
        if not lit:
            break
        ln += m.read(int(lit.group(1)))
        ln += m.readline()
    return ln


def raw(m, line, data=b"", strip=False):
    """Sends one command (line after the tag; data right after it, e.g.
    LITERAL+ literals); returns (tagged line, [untagged lines]), the
    untagged ones without their CRLF when strip is set."""
    tag = m._new_tag()
    m.send(tag + b" " + line + data + b"\r\n")
    lines = []
    while True:
        ln = read_response(m)
        if not ln:
            raise AssertionError("connection closed")
        if ln.startswith(tag + b" "):
            return ln.rstrip(b"\r\n"), lines
        lines.append(ln.rstrip(b"\r\n") if strip else ln)
