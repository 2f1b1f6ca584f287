/*
 * imap/parser: an incremental parser for IMAP commands sent by a client
 * (RFC 3501 / RFC 9051 §9 "command"), with LITERAL+ (RFC 7888) and
 * literal8 (RFC 3516).
 *
 * The session feeds whatever bytes it has; the parser consumes up to the end
 * of one command and says:
 *   IMAP_PARSE_MORE      all bytes consumed, the command is not complete;
 *   IMAP_PARSE_CONTINUE  a synchronizing literal {n} was accepted: send
 *                        "+ OK" (RFC 9051 §7.5) and feed the rest;
 *   IMAP_PARSE_DONE      a whole command is in imap_parser_command();
 *   IMAP_PARSE_ERROR     the command is refused; imap_parser_error() says why.
 *
 * Errors are reported when the command is over from the client's point of
 * view: the parser first swallows the rest of the line and any
 * non-synchronizing literal the client sends anyway (so a {n+} literal that
 * is too big is skipped, never buffered), while a synchronizing literal
 * that is too big is refused at once, before the client sends it.
 * Either way the next byte fed is the start of the next command. The one
 * exception is a line longer than max_line: it is reported as soon as the
 * limit is passed (line_too_long), in the middle of the line; the session
 * is expected to answer BYE and close.
 *
 * Lines end with CRLF; a bare LF is accepted as well (clients and scripts
 * do send it), a lone CR elsewhere is a syntax error.
 *
 * Atoms are taken liberally: any run of bytes above SP other than ( ) "
 * and, once a '[' opened inside an atom, everything up to the matching ']'
 * including spaces and parentheses, so "BODY[HEADER.FIELDS (From To)]<0.9>"
 * is one atom for the FETCH code to take apart.
 */
#ifndef TEGAMI_IMAP_PARSER_H
#define TEGAMI_IMAP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct imap_parser_limits {
	size_t max_line;	/* command text, literals not counted */
	uint64_t max_literal;	/* one literal */
	uint64_t max_literal_total; /* all literals of one command */
	unsigned int max_depth;	/* nesting of parenthesized lists */
	unsigned int max_args;	/* arguments in the whole tree */
};

enum imap_arg_type {
	IMAP_ARG_ATOM,
	IMAP_ARG_QUOTED,
	IMAP_ARG_LITERAL,
	IMAP_ARG_NIL,
	IMAP_ARG_LIST,
};

struct imap_arg {
	enum imap_arg_type type;
	/* ATOM, QUOTED, LITERAL: the value, NUL-terminated (a literal may
	   hold NULs too, so use len); NIL: "NIL" */
	char *str;
	size_t len;
	bool literal8;		/* ~{n} */
	bool literal_nonsync;	/* {n+} */
	/* LIST */
	struct imap_arg *list;
	unsigned int count;
	unsigned int cap;
};

struct imap_command {
	char *tag;
	char *name;		/* as sent; compare case-insensitively */
	struct imap_arg args;	/* a LIST holding the arguments */
};

enum imap_parse_result {
	IMAP_PARSE_MORE,
	IMAP_PARSE_CONTINUE,
	IMAP_PARSE_DONE,
	IMAP_PARSE_ERROR,
};

struct imap_parse_error {
	const char *text;	/* human text for the BAD/NO reply */
	const char *code;	/* response code without brackets, or NULL */
	/* the line was longer than max_line, reported mid-line: the session
	   should answer BYE and close (RFC 9051 §7.1.5) */
	bool line_too_long;
};

struct imap_parser;

struct imap_parser *imap_parser_create(const struct imap_parser_limits *limits);
void imap_parser_free(struct imap_parser **parser);

/*
 * Consumes bytes of data; *consumed_r says how many (always all of them on
 * MORE). After DONE or ERROR the command (or error) stays readable until the
 * next feed, which starts a new command.
 */
enum imap_parse_result imap_parser_feed(struct imap_parser *parser,
    const void *data, size_t len, size_t *consumed_r);

/* After DONE: the command, owned by the parser. */
const struct imap_command *imap_parser_command(const struct imap_parser *parser);
/* After ERROR: why; owned by the parser. */
const struct imap_parse_error *imap_parser_error(const struct imap_parser *parser);
/*
 * The tag and command name of the command being (or last) parsed, NULL when
 * not known yet or not valid; lets the session tag a BAD reply and answer an
 * APPEND that is too big with NO [TOOBIG].
 */
const char *imap_parser_tag(const struct imap_parser *parser);
const char *imap_parser_name(const struct imap_parser *parser);
/*
 * While IMAP_PARSE_CONTINUE is pending, the size of the literal the client
 * announced (for a quota check before "+ OK").
 */
uint64_t imap_parser_literal_size(const struct imap_parser *parser);
/* All literal bytes of the command so far, the pending one included. */
uint64_t imap_parser_literal_total(const struct imap_parser *parser);
/*
 * While IMAP_PARSE_CONTINUE is pending: the session refuses the literal
 * (e.g. NO [OVERQUOTA] before the client sends it). The command is over;
 * the tag and name stay readable until the next feed.
 */
void imap_parser_refuse_literal(struct imap_parser *parser);
/* Forgets any partial command (e.g. after the session switched to IDLE). */
void imap_parser_reset(struct imap_parser *parser);
/*
 * After a command has been run: frees its arguments (an APPEND's literal)
 * and the line buffer, so an idle session holds no more than a fresh
 * parser. Does nothing while a command is half read.
 */
void imap_parser_release(struct imap_parser *parser);

/* Argument helpers: NULL/false when the argument is not of that kind. */
bool imap_arg_is_atom(const struct imap_arg *arg, const char *atom_ci);
/* astring (atom, quoted or literal; NIL counts as the atom "NIL"). */
const char *imap_arg_astring(const struct imap_arg *arg);
/* string (quoted or literal only), or NULL. */
const char *imap_arg_string(const struct imap_arg *arg);
/* A list argument, or NULL. */
const struct imap_arg *imap_arg_list(const struct imap_arg *arg,
    unsigned int *count_r);

/*
 * Sequence sets (RFC 9051 §9 "sequence-set"), e.g. "1:*,5,7:9" or "$".
 * Parsing keeps '*' as IMAP_SEQ_STAR; imap_seqset_normalize() replaces it
 * with the number of the last message (or the highest UID; 0 for an empty
 * mailbox), puts each range in order, sorts the ranges and merges those that
 * touch or overlap.
 */
#define IMAP_SEQ_STAR 0u	/* never a valid nz-number, so free as a marker */

struct imap_seq_range {
	uint32_t lo, hi;
};

struct imap_seqset {
	struct imap_seq_range *ranges;
	unsigned int count;
	bool searchres;		/* "$": the saved SEARCH result (RFC 5182) */
};

/* -1 on bad syntax, 0 or more than max_ranges ranges. */
int imap_seqset_parse(const char *s, unsigned int max_ranges,
    struct imap_seqset *set_r, const char **error_r);
void imap_seqset_normalize(struct imap_seqset *set, uint32_t star);
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n);
void imap_seqset_free(struct imap_seqset *set);

#endif
