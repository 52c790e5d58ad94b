// SPDX-License-Identifier: MIT
// expect: header_name_array_is_not_a_string_literal
// A constant char array that is no string literal (no NUL at its end) does not compile as a
// header name: its last character would be dropped. With -DGOOD a terminated one compiles.
#include <ringwork/ringwork.hpp>

#ifdef GOOD
static constexpr char kName[] = "X-Name";
#else
static constexpr char kName[] = {'X', '-', 'N', 'a', 'm', 'e'};
#endif

void handler(ringwork::Context& c) { c.set_header(kName, "value"); }
