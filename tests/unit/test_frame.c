/* test_frame: message framing between processes: the length-prefixed stream frames of the
 * manager <-> scan service socket, and Envelope decoding with its limits (STYLE: size checked
 * before unpack, counts after). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "wire.h"

static void s_push_frame(struct frame_reader *r, const char *payload, size_t len)
{
    uint8_t hdr[FRAME_HEADER_LEN];
    frame_header(hdr, (uint32_t)len);
    frame_reader_push(r, hdr, sizeof hdr);
    frame_reader_push(r, payload, len);
}

static void test_whole_frames(void **state)
{
    struct frame_reader r;
    const uint8_t *f;
    size_t len;
    (void)state;

    frame_reader_init(&r, 1024);
    s_push_frame(&r, "hello", 5);
    s_push_frame(&r, "", 0);
    s_push_frame(&r, "world!", 6);
    assert_int_equal(frame_reader_next(&r, &f, &len), 1);
    assert_int_equal(len, 5);
    assert_memory_equal(f, "hello", 5);
    assert_int_equal(frame_reader_next(&r, &f, &len), 1);
    assert_int_equal(len, 0);
    assert_int_equal(frame_reader_next(&r, &f, &len), 1);
    assert_memory_equal(f, "world!", 6);
    assert_int_equal(frame_reader_next(&r, &f, &len), 0);
    frame_reader_free(&r);
}

/* Bytes arrive one at a time: no frame before its last byte, the right one after. */
static void test_byte_by_byte(void **state)
{
    struct frame_reader r;
    uint8_t wire[FRAME_HEADER_LEN + 300];
    const uint8_t *f;
    size_t len;
    (void)state;

    frame_header(wire, 300);
    for (int i = 0; i < 300; i++)
        wire[FRAME_HEADER_LEN + i] = (uint8_t)i;
    frame_reader_init(&r, 1024);
    for (size_t i = 0; i < sizeof wire; i++) {
        assert_int_equal(frame_reader_next(&r, &f, &len), 0);
        frame_reader_push(&r, &wire[i], 1);
    }
    assert_int_equal(frame_reader_next(&r, &f, &len), 1);
    assert_int_equal(len, 300);
    assert_memory_equal(f, wire + FRAME_HEADER_LEN, 300);
    frame_reader_free(&r);
}

static void test_limit_at_and_past(void **state)
{
    struct frame_reader r;
    char *big = calloc(1, 1025);
    const uint8_t *f;
    size_t len;
    (void)state;

    frame_reader_init(&r, 1024);
    s_push_frame(&r, big, 1024); /* at the limit: accepted */
    assert_int_equal(frame_reader_next(&r, &f, &len), 1);
    assert_int_equal(len, 1024);
    s_push_frame(&r, big, 1025); /* one past: refused from the header alone */
    assert_int_equal(frame_reader_next(&r, &f, &len), -1);
    frame_reader_free(&r);
    free(big);
}

static void test_envelope_round_trip(void **state)
{
    Portcullis__ConfigSnapshot snap = PORTCULLIS__CONFIG_SNAPSHOT__INIT;
    Portcullis__Setting kv = PORTCULLIS__SETTING__INIT, *kvs[] = { &kv };
    envelope_t env = PORTCULLIS__ENVELOPE__INIT, *back;
    settings_t *s;
    uint8_t *buf;
    size_t len;
    char err[256];
    (void)state;

    kv.section = "smtp";
    kv.name = "max_recipients";
    kv.value = "12";
    snap.version = 42;
    snap.n_settings = 1;
    snap.settings = kvs;
    env.body_case = PORTCULLIS__ENVELOPE__BODY_CONFIG;
    env.config = &snap;
    buf = wire_pack(&env, &len);
    back = wire_unpack(buf, len);
    assert_non_null(back);
    assert_int_equal(back->body_case, PORTCULLIS__ENVELOPE__BODY_CONFIG);
    s = wire_settings_from_snapshot(back->config, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(settings_version(s), 42);
    assert_int_equal(settings_int(s, SETTING_SMTP_MAX_RECIPIENTS), 12);
    settings_free(&s);
    wire_free(&back);

    /* A snapshot with an out-of-range value is refused whole. */
    kv.value = "0";
    free(buf);
    buf = wire_pack(&env, &len);
    back = wire_unpack(buf, len);
    assert_non_null(back);
    assert_null(wire_settings_from_snapshot(back->config, err, sizeof err));
    assert_non_null(strstr(err, "max_recipients"));
    wire_free(&back);
    free(buf);
}

static void test_envelope_garbage_and_empty(void **state)
{
    static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01 };
    envelope_t env = PORTCULLIS__ENVELOPE__INIT;
    uint8_t *buf;
    size_t len;
    (void)state;

    assert_null(wire_unpack(junk, sizeof junk));
    /* An envelope with no body is not a message. */
    buf = wire_pack(&env, &len);
    assert_null(wire_unpack(buf, len));
    free(buf);
    /* Oversize is refused before decoding. */
    assert_null(wire_unpack(junk, WIRE_MSG_MAX + 1));
}

static void test_envelope_count_limit(void **state)
{
    Portcullis__ConfigSnapshot snap = PORTCULLIS__CONFIG_SNAPSHOT__INIT;
    envelope_t env = PORTCULLIS__ENVELOPE__INIT, *back;
    size_t n = WIRE_SETTINGS_MAX + 1, len;
    Portcullis__Setting *items = calloc(n, sizeof *items);
    Portcullis__Setting **ptrs = calloc(n, sizeof *ptrs);
    uint8_t *buf;
    (void)state;

    for (size_t i = 0; i < n; i++) {
        portcullis__setting__init(&items[i]);
        items[i].section = "s";
        items[i].name = "n";
        items[i].value = "v";
        ptrs[i] = &items[i];
    }
    snap.settings = ptrs;
    env.body_case = PORTCULLIS__ENVELOPE__BODY_CONFIG;
    env.config = &snap;
    snap.n_settings = WIRE_SETTINGS_MAX; /* at the limit: decodes */
    buf = wire_pack(&env, &len);
    back = wire_unpack(buf, len);
    assert_non_null(back);
    wire_free(&back);
    free(buf);
    snap.n_settings = n; /* one past: refused */
    buf = wire_pack(&env, &len);
    assert_null(wire_unpack(buf, len));
    free(buf);
    free(ptrs);
    free(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_frames),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_limit_at_and_past),
        cmocka_unit_test(test_envelope_round_trip),
        cmocka_unit_test(test_envelope_garbage_and_empty),
        cmocka_unit_test(test_envelope_count_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
