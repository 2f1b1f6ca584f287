"""MIME helpers the queue and e2e tests share."""
import email
import email.policy


def leaves(raw):
    """(content type, decoded bytes) of every leaf, through message/rfc822."""
    out = []

    def walk(m):
        if m.is_multipart():
            for p in m.get_payload():
                walk(p)
        else:
            out.append((m.get_content_type(), m.get_payload(decode=True)))
    walk(email.message_from_bytes(raw, policy=email.policy.compat32))
    return out
