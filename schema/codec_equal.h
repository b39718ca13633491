/*
 * codec_equal.h - private to libweft_schema and its tests and fuzzers:
 * field-by-field equality of decoded records, for round-trip checks.
 *
 * Equality is what the wire can carry: fields that a has_* flag marks as
 * unset are not compared (the encoder leaves them out), NULL and "" differ,
 * and so do a NULL argv and an empty one.
 */
#ifndef WEFT_CODEC_EQUAL_H
#define WEFT_CODEC_EQUAL_H

#include <weft/schema.h>

bool weft_event_equal(const weft_event *a, const weft_event *b);
bool weft_process_rec_equal(const weft_process_rec *a,
			    const weft_process_rec *b);
bool weft_file_rec_equal(const weft_file_rec *a, const weft_file_rec *b);
bool weft_report_equal(const weft_report *a, const weft_report *b);

#endif /* WEFT_CODEC_EQUAL_H */
