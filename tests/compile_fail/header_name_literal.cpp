// SPDX-License-Identifier: MIT
// expect: header_name_literal_is_not_a_token
// A string literal that is no token, given as a header name, does not compile (FieldName's
// consteval constructor). With -DGOOD the same file, with a valid literal, compiles: the
// failure is the name's, nothing else's.
#include <ringwork/ringwork.hpp>

#include <string>

void handler(ringwork::Context& c) {
    c.set_header("X-Fine", "value");
    c.add_header(std::string("X-Run-Time"), "value"); // checked when run, compiles
    const char* pointer = "X-Pointer";
    c.add_header(pointer, "value"); // so is a const char*
#ifdef GOOD
    c.set_header("X-Also-Fine", "value");
#else
    c.set_header("X Bad: name", "value");
#endif
}
