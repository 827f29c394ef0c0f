/* libFuzzer target (R8.6): the answers of the look-up services a child trusts — smart scan's
 * verdicts and the URL-rating service's ratings —, the parent's look-up request parser, the
 * rating service's answer as the parent checks it, and the credential header (R8.7). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_lookup.h"
#include "lookup_auth.h"
#include "scan/smartscan.h"
#include "scan/wrs_client.h"
#include "sps/sps_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char hex[2][65] = {
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
    };
    struct smartscan_result sr;
    struct wrs_client_result wr;
    uint8_t (*digests)[SPS_DIGEST_LEN] = malloc(SPS_BATCH_MAX * sizeof *digests);
    size_t n = 0;
    char err[256];

    memset(&sr, 0, sizeof sr);
    if (smartscan_parse_answer((const char *)data, size, hex, 2, &sr) != 0 && sr.error[0] == '\0')
        abort();
    memset(&wr, 0, sizeof wr);
    if (wrs_client_parse_answer((const char *)data, size, &wr) != 0 && wr.error[0] == '\0')
        abort();
    if (sps_request_parse((const char *)data, size, digests, &n, err, sizeof err) == 0 &&
        n > SPS_BATCH_MAX)
        abort();
    free(digests);
    free(http_lookup_rate_answer((const char *)data, size, err, sizeof err));
    {
        char header[LOOKUP_BEARER_MAX + 2], name[LOOKUP_NAME_MAX + 1];
        char token[LOOKUP_TOKEN_HEX_LEN + 1];
        size_t hn = size < sizeof header - 1 ? size : sizeof header - 1;
        memcpy(header, data, hn);
        header[hn] = '\0';
        if (lookup_bearer_parse(header, name, token) == 0 &&
            (!lookup_name_valid(name) || strlen(token) != LOOKUP_TOKEN_HEX_LEN))
            abort();
    }
    return 0;
}
