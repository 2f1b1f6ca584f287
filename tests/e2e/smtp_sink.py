#!/usr/bin/python3
"""A minimal SMTP server, the remote side in tests: ESMTP with
PIPELINING/8BITMIME/SIZE/ENHANCEDSTATUSCODES, refuses RCPT to
unknown@..., writes each message to OUTDIR/<n>.eml, its envelope to
OUTDIR/<n>.env and the MAIL command as sent to OUTDIR/<n>.mail.

    smtp_sink.py ADDRESS PORT OUTDIR [--no-8bitmime]

--no-8bitmime plays a 7-bit server (RFC 6152 not offered): no 8BITMIME in
the EHLO reply, and MAIL with a BODY= parameter is refused (555), as a
server that does not know the parameter does.
"""
import os
import socketserver
import sys

OUTDIR = sys.argv[3]
SEVEN_BIT = "--no-8bitmime" in sys.argv[4:]
COUNTER = [0]


class Handler(socketserver.StreamRequestHandler):
    def reply(self, s):
        self.wfile.write(s.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        self.reply("220 sink ESMTP")
        mail, rcpts, mail_cmd = None, [], ""
        while True:
            line = self.rfile.readline(4096)
            if not line:
                return
            cmd = line.rstrip(b"\r\n").decode("utf-8", "replace")
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.reply("250-sink\r\n250-PIPELINING\r\n"
                           + ("" if SEVEN_BIT else "250-8BITMIME\r\n")
                           + "250-SIZE 10240000\r\n250 ENHANCEDSTATUSCODES")
            elif verb == "HELO":
                self.reply("250 sink")
            elif verb == "MAIL":
                if SEVEN_BIT and " BODY=" in cmd.upper():
                    self.reply("555 5.5.4 BODY parameter not supported")
                    continue
                mail, rcpts = cmd[10:].split(">")[0].lstrip("<"), []
                mail_cmd = cmd
                self.reply("250 2.1.0 ok")
            elif verb == "RCPT":
                rcpt = cmd[8:].split(">")[0].lstrip("<")
                if rcpt.startswith("unknown@"):
                    self.reply("550 5.1.1 no such user")
                else:
                    rcpts.append(rcpt)
                    self.reply("250 2.1.5 ok")
            elif verb == "DATA":
                if not rcpts:
                    self.reply("554 5.5.1 no valid recipients")
                    continue
                self.reply("354 go ahead")
                data = []
                while True:
                    l = self.rfile.readline(1 << 20)
                    if not l or l == b".\r\n":
                        break
                    data.append(l[1:] if l.startswith(b".") else l)
                COUNTER[0] += 1
                n = COUNTER[0]
                with open(os.path.join(OUTDIR, f"{n}.eml.tmp"), "wb") as f:
                    f.write(b"".join(data))
                with open(os.path.join(OUTDIR, f"{n}.env"), "w") as f:
                    f.write(mail + "\n" + "\n".join(rcpts) + "\n")
                with open(os.path.join(OUTDIR, f"{n}.mail"), "w") as f:
                    f.write(mail_cmd + "\n")
                os.rename(os.path.join(OUTDIR, f"{n}.eml.tmp"),
                          os.path.join(OUTDIR, f"{n}.eml"))
                self.reply(f"250 2.0.0 queued as {n}")
            elif verb == "RSET":
                mail, rcpts = None, []
                self.reply("250 2.0.0 ok")
            elif verb == "QUIT":
                self.reply("221 2.0.0 bye")
                return
            else:
                self.reply("502 5.5.2 not implemented")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


if __name__ == "__main__":
    srv = Server((sys.argv[1], int(sys.argv[2])), Handler)
    print("ready", flush=True)
    srv.serve_forever()
