/* edit: the delivered (and archived) copy of a message as the policy wants it: Subject tagged
 * (a Subject added if there is none) and headers added at the top. Works on the raw bytes so
 * that everything else stays exactly as received. */
#ifndef PORTCULLIS_EDIT_H
#define PORTCULLIS_EDIT_H

#include <stddef.h>

#include "policy.h"

struct evbuffer;

/* NULL when the decision changes nothing; else a new buffer the caller owns. */
struct evbuffer *edit_message(const char *data, size_t len, const struct policy_decision *d);

#endif
