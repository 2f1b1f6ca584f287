"""Real clients run inside a bed namespace (smtplib, imaplib, raw sockets),
from a chosen source address:

    ip netns exec <ns> /usr/bin/python3 e2e_clients.py <action> '<json args>'

prints one JSON object with what the server answered. run() in this file
does that from the test process. Used by test_spam_bed.py to act as a spammer,
a password guesser or a user's mail client on another host."""
import base64
import json
import os
import socket
import ssl
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(bed, role, action, timeout=60, **args):
    """Runs action inside role's namespace; returns its JSON answer."""
    r = subprocess.run(["ip", "netns", "exec", bed.ns(role), "/usr/bin/python3",
                        os.path.join(HERE, "e2e_clients.py"), action, json.dumps(args)],
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"{action} in {role}: exit {r.returncode}\n{r.stdout}{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# --- the actions (inside the namespace) ---------------------------------

def _ctx(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    return ctx


def _line(sock):
    data = b""
    while b"\n" not in data:
        chunk = sock.recv(1024)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", "replace")


def smtp_banner(a):
    s = socket.create_connection((a["host"], a.get("port", 25)), timeout=30,
                                 source_address=(a["source"], 0))
    try:
        return {"banner": _line(s)}
    finally:
        s.close()


def smtp_send(a):
    """One message over SMTP (port 25 by default, no AUTH): the reply that
    ended it, or 250."""
    import smtplib
    msg = base64.b64decode(a["msg"])
    c = None
    try:
        c = smtplib.SMTP(a["host"], a.get("port", 25), timeout=60,
                         source_address=(a["source"], 0), local_hostname=a.get("helo"))
        c.ehlo(a.get("helo"))
        refused = c.sendmail(a["mail_from"], a["rcpts"], msg)
        return {"code": 250, "refused": {k: [v[0], v[1].decode()] for k, v in refused.items()}}
    except smtplib.SMTPRecipientsRefused as e:
        code, text = list(e.recipients.values())[0]
        return {"code": code, "text": text.decode(), "stage": "rcpt"}
    except smtplib.SMTPDataError as e:
        return {"code": e.smtp_code, "text": e.smtp_error.decode(), "stage": "data"}
    except smtplib.SMTPResponseException as e:
        return {"code": e.smtp_code, "text": e.smtp_error.decode(), "stage": "other"}
    finally:
        try:
            if c is not None:
                c.quit()
        except Exception:
            pass


def smtp_auth(a):
    """AUTH PLAIN once on the submission port after STARTTLS: 235, 535,
    or 421 when the server bans and closes."""
    import smtplib
    c = None
    try:
        c = smtplib.SMTP(a["host"], a.get("port", 587), timeout=60,
                         source_address=(a["source"], 0))
        c.starttls(context=_ctx(a["cafile"]))
        c.ehlo()
        c.user, c.password = a["user"], a["password"]
        c.auth("PLAIN", c.auth_plain)
        return {"code": 235}
    except smtplib.SMTPAuthenticationError as e:
        return {"code": e.smtp_code, "text": e.smtp_error.decode()}
    except smtplib.SMTPServerDisconnected:
        return {"code": 421}
    except smtplib.SMTPResponseException as e:
        return {"code": e.smtp_code, "text": e.smtp_error.decode()}
    finally:
        try:
            if c is not None:
                c.close()
        except Exception:
            pass


def imap_greeting(a):
    s = socket.create_connection((a["host"], a.get("port", 143)), timeout=30,
                                 source_address=(a["source"], 0))
    try:
        return {"greeting": _line(s)}
    finally:
        s.close()


def _imap_connect(a):
    """imaplib from a["source"] (imaplib itself has no source address)."""
    import imaplib

    class Sourced(imaplib.IMAP4):
        def _create_socket(self, timeout):
            return socket.create_connection((self.host, self.port), timeout,
                                            source_address=(a["source"], 0))
    return Sourced(a["host"], a.get("port", 143), timeout=60)


def _imap(a):
    c = _imap_connect(a)
    c.starttls(ssl_context=_ctx(a["cafile"]))
    return c


def imap_login(a):
    import imaplib
    try:
        c = _imap_connect(a)
    except (imaplib.IMAP4.error, imaplib.IMAP4.abort, OSError) as e:
        return {"result": "refused", "text": str(e)}
    try:
        c.starttls(ssl_context=_ctx(a["cafile"]))
        c.login(a["user"], a["password"])
        c.logout()
        return {"result": "OK"}
    except (imaplib.IMAP4.error, imaplib.IMAP4.abort, OSError) as e:
        return {"result": "NO", "text": str(e)}


def imap_move(a):
    """Moves the messages of folder `src` whose subject contains `subject`
    into folder `dst` (UID MOVE, or COPY + EXPUNGE with copy_expunge)."""
    c = _imap(a)
    c.login(a["user"], a["password"])
    typ, _ = c.select(a["src"])
    assert typ == "OK"
    typ, data = c.uid("SEARCH", None, "SUBJECT", a["subject"])
    uids = data[0].split()
    if uids:
        seq = b",".join(uids).decode()
        if a.get("copy_expunge"):
            c.uid("COPY", seq, a["dst"])
            c.uid("STORE", seq, "+FLAGS", r"(\Deleted)")
            c.expunge()
        else:
            typ, _ = c.uid("MOVE", seq, a["dst"])
            assert typ == "OK"
    c.logout()
    return {"moved": len(uids)}


ACTIONS = {f.__name__: f for f in (smtp_banner, smtp_send, smtp_auth, imap_greeting,
                                   imap_login, imap_move)}

if __name__ == "__main__":
    out = ACTIONS[sys.argv[1]](json.loads(sys.argv[2]))
    print(json.dumps(out))
