/*
 * mail/preview: a short plain-text preview of a message, as IMAP PREVIEW
 * (RFC 8970) gives it to clients that show a line of text under the
 * subject.
 *
 * The text is the message's first readable part: the first text/plain leaf
 * that is not an attachment (in a multipart/alternative, the plain one),
 * else the first text/html leaf with its markup, style and script removed
 * and its character references resolved. Transfer encoding and charset are
 * undone; quoted lines ("> ..."), everything after a signature delimiter
 * ("-- ") and a leading "On ... wrote:" line before quoted text are
 * skipped; runs of white space become one space. At most max_chars
 * characters (code points) are kept, never a partial UTF-8 sequence; RFC
 * 8970 allows 256, 200 is what the RFC suggests.
 *
 * Only the first PREVIEW_INPUT_MAX bytes of the chosen part are read, so a
 * preview costs the same for a 50 MB message as for a short one.
 */
#ifndef TEGAMI_MAIL_PREVIEW_H
#define TEGAMI_MAIL_PREVIEW_H

#include "mail/mime.h"

#include <stddef.h>

#define PREVIEW_CHARS 200
#define PREVIEW_INPUT_MAX (16 * 1024)

/* The preview of msg (malloc'd UTF-8, "" when the message has no text). */
char *mail_preview(const struct mime_message *msg, size_t max_chars);

#endif
