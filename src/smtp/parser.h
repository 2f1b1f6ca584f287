/*
 * smtp/parser: the incremental readers under the SMTP server session. They
 * know nothing about sockets: bytes go in, results come out, so tests and
 * fuzzers drive them one byte at a time.
 *
 * Line-ending policy (stated once, as Postfix does for smtp_get):
 *  - Command lines end in CRLF. A line ending in a bare LF is consumed whole
 *    and reported as SMTP_LINE_BARE_LF; the server answers 500 5.5.2 and does
 *    not run it. A CR not followed by LF stays inside the line, where the
 *    command checks reject it as a bad character.
 *  - DATA lines end in CRLF. A bare LF or a bare CR anywhere in the body
 *    marks the message as bad (it is then refused with 550 5.5.2 after the
 *    end of data), and only CRLF "." CRLF ends the data: LF "." LF,
 *    CR "." CR, LF "." CRLF and the like are ordinary body bytes. This is
 *    the SMTP smuggling defence.
 */
#ifndef TEGAMI_SMTP_PARSER_H
#define TEGAMI_SMTP_PARSER_H

#include "lib/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum smtp_line_result {
	SMTP_LINE_MORE = 0,	/* all input consumed, no complete line yet */
	SMTP_LINE_OK,		/* a complete line is in reader->line (no CRLF) */
	SMTP_LINE_TOO_LONG,	/* a line longer than max ended (its bytes dropped) */
	SMTP_LINE_BARE_LF,	/* a line ended in LF without CR (dropped) */
};

struct smtp_line_reader {
	struct buf line;	/* the current line, without CRLF */
	size_t max;		/* longest line accepted, without CRLF */
	bool overflow;		/* dropping the rest of an overlong line */
};

/* max = longest line without its CRLF. */
void smtp_line_reader_init(struct smtp_line_reader *lr, size_t max);
/* Wipes the line buffer (it may have held AUTH data) and frees it. */
void smtp_line_reader_free(struct smtp_line_reader *lr);
/*
 * Consumes bytes from in until a line ends or the input is used up;
 * *consumed_r says how many. Any result but SMTP_LINE_MORE ends one line:
 * the caller handles it and then calls smtp_line_reader_next() before
 * feeding the rest. Memory use is bounded by max whatever comes in.
 */
enum smtp_line_result smtp_line_reader_feed(struct smtp_line_reader *lr,
    const unsigned char *in, size_t len, size_t *consumed_r);
/* Forgets the finished line (wiping it) and gets ready for the next one. */
void smtp_line_reader_next(struct smtp_line_reader *lr);

/* DATA body reader: dot-unstuffing, terminator, bare CR/LF detection. */
struct smtp_data_reader {
	int state;		/* private */
	size_t line_len;	/* length of the current line so far */
	size_t line_max;	/* longer body lines set long_line */
	uint64_t bytes_out;	/* body bytes produced so far */
	bool bare_cr_lf;	/* a bare CR or bare LF was seen */
	bool long_line;		/* a line longer than line_max was seen */
	bool done;		/* CRLF.CRLF seen */
};

void smtp_data_reader_init(struct smtp_data_reader *dr, size_t line_max);
/*
 * Reads body bytes from in. The unstuffed body goes to out, which must have
 * room for len + 1 bytes (a CR held back after a leading dot may come out
 * with the next byte; over a whole body output <= input); *out_len_r is how
 * much was written. Returns the number of input bytes consumed: all of them,
 * unless the terminator ".\r\n" was reached, in which case dr->done is set
 * and the bytes after the terminator are left for the command reader. The
 * body keeps the CRLF of its last line; the final ".\r\n" is not part of it.
 */
size_t smtp_data_reader_feed(struct smtp_data_reader *dr,
    const unsigned char *in, size_t len, unsigned char *out, size_t *out_len_r);

/*
 * Line-end scanner for BDAT chunks (no terminator, no unstuffing): tracks
 * CR/LF pairs across chunk boundaries and sets bare_cr_lf as above.
 * Initialise with smtp_data_reader_init().
 */
void smtp_data_reader_scan_binary(struct smtp_data_reader *dr,
    const unsigned char *in, size_t len);
/* At the end of a BDAT message: a trailing lone CR is a bare CR. */
void smtp_data_reader_finish_binary(struct smtp_data_reader *dr);

/*
 * Splits a command line into its verb and its argument text. The verb is
 * the leading run of letters (at most 15); it must be followed by the end
 * of the line or a space. *args_r points after the space(s) into line (or
 * at "" when there is none). Returns 0, or -1 if there is no proper verb.
 * The line must be NUL-terminated.
 */
int smtp_command_split(const char *line, char verb_r[16], const char **args_r);

/*
 * Checks the bytes of a command line: no NUL, no control character other
 * than TAB, no DEL, and any non-ASCII must be valid UTF-8. Returns true if
 * the line may be interpreted.
 */
bool smtp_command_chars_ok(const char *line, size_t len);

/*
 * Splits a decoded SASL PLAIN response (RFC 4616: authzid NUL authcid NUL
 * passwd) in place. dec must have room for len + 1 bytes (a NUL is put at
 * dec[len]). The three pointers point into dec. Returns -1 unless there are
 * exactly two NULs and a non-empty authcid.
 */
int smtp_sasl_plain_split(unsigned char *dec, size_t len,
    const char **authzid_r, const char **login_r, char **password_r);

/*
 * Strict base64 decoding (RFC 4648, padding required, no white space) of
 * in (len bytes) into out (outsize bytes). Returns the decoded length, or
 * -1 on bad input or when the result does not fit.
 */
long smtp_base64_decode(const char *in, size_t len, unsigned char *out,
    size_t outsize);
/* Encodes into out (outsize must be >= 4 * ceil(len / 3) + 1); NUL-terminated. */
void smtp_base64_encode(const unsigned char *in, size_t len, char *out,
    size_t outsize);

#endif
