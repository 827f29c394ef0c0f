/* libFuzzer target (R8.6): policy compile of the rules, areas and spam rules a ConfigSnapshot
 * carries (as the child receives them), then an evaluation against facts made of the same
 * input; a compile error must come with a message. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    envelope_t *e = wire_unpack(data, size);
    char err[1024] = "";
    policy_t *p;

    if (e == NULL || e->body_case != PORTCULLIS__ENVELOPE__BODY_CONFIG) {
        wire_free(&e);
        return 0;
    }
    p = policy_compile(e->config->rules, e->config->n_rules, e->config->areas,
                       e->config->n_areas, e->config->spam_rules, e->config->n_spam_rules, err,
                       sizeof err);
    if (p == NULL && err[0] == '\0')
        abort();
    if (p != NULL) {
        static const char *const rcpts[] = { "a@b.example" };
        struct policy_header h = { "Subject", (const char *)data };
        char body[256];
        const char *texts[] = { body };
        size_t lens[] = { 0 };
        struct policy_facts f = { .sender = "s@x.example", .recipients = rcpts,
                                  .nrecipients = 1, .size = size, .headers = &h, .nheaders = 0,
                                  .texts = texts, .text_lens = lens, .ntexts = 1,
                                  .virus = size % 2 ? "Fuzz.Virus" : NULL,
                                  .exceptions = (unsigned)(size % 7), .spam_enabled = true };
        struct policy_decision d;
        lens[0] = size < sizeof body ? size : sizeof body;
        memcpy(body, data, lens[0]);
        policy_eval(p, &f, &d);
        if (d.floor && d.fate != POLICY_QUARANTINE)
            abort();
        policy_free(&p);
    }
    wire_free(&e);
    return 0;
}
