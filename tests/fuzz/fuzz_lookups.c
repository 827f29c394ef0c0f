/* libFuzzer target (R8.6): the answers of the look-up services a child trusts — smart scan's
 * verdicts and the URL-rating service's ratings — and the parent's SPS request parser. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
    return 0;
}
