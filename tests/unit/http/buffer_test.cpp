// SPDX-License-Identifier: MIT
// Arena: the per-request bump allocator (copied header values, a rebased head).
#include <ringwork/http/buffer.hpp>
#include <ringwork/http/response.hpp>

#include "http/fields.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <doctest/doctest.h>
#include <string>
#include <utility>
#include <vector>

using ringwork::http::Arena;

namespace {

/// Whether [a, a + an) and [b, b + bn) share a byte.
bool overlap(const char* a, std::size_t an, const char* b, std::size_t bn) {
    const auto x = reinterpret_cast<std::uintptr_t>(a);
    const auto y = reinterpret_cast<std::uintptr_t>(b);
    return x < y + bn && y < x + an;
}

/// Allocates `sizes` in order, filling each block with its index; checks that no two blocks
/// overlap and that every block still holds its own bytes at the end.
void check_disjoint(Arena& arena, const std::vector<std::size_t>& sizes) {
    std::vector<std::pair<char*, std::size_t>> blocks;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        char* p = arena.allocate(sizes[i]);
        REQUIRE(p != nullptr);
        std::memset(p, static_cast<int>('a' + i % 26), sizes[i]);
        for (const auto& [q, n] : blocks) {
            CHECK_FALSE(overlap(p, sizes[i], q, n));
        }
        blocks.emplace_back(p, sizes[i]);
    }
    for (std::size_t i = 0; i < blocks.size(); ++i) {
        CAPTURE(i);
        CHECK(std::string(blocks[i].first, blocks[i].second) ==
              std::string(blocks[i].second, static_cast<char>('a' + i % 26)));
    }
}

} // namespace

TEST_SUITE("http.arena") {
    TEST_CASE("a first allocation larger than the block does not make later ones overlap") {
        Arena arena(32);
        check_disjoint(arena, {100, 1, 1, 1, 40, 1, 31, 2});
    }

    TEST_CASE("allocations stay disjoint across blocks, overflow and reset") {
        for (const std::size_t block : {std::size_t{16}, std::size_t{64}, std::size_t{4096}}) {
            CAPTURE(block);
            Arena arena(block);
            check_disjoint(arena, {1, block - 1, 1, block, block + 1, 3, block * 3, 7, 7});
            const std::uint64_t before = arena.overflow_allocations();
            arena.reset();
            // After reset the first block is reused: small allocations need no new block.
            check_disjoint(arena, {1, 2, 3});
            CHECK(arena.overflow_allocations() == before);
            arena.reset();
            check_disjoint(arena, {block * 2, 1, 1, block, 5});
        }
    }

    TEST_CASE("copy keeps the bytes and an empty view costs nothing") {
        Arena arena(8);
        const std::string long_value(50, 'x');
        const std::string_view a = arena.copy(long_value);
        const std::string_view b = arena.copy("abc");
        const std::string_view c = arena.copy("");
        CHECK(a == long_value);
        CHECK(b == "abc");
        CHECK(c.empty());
        CHECK_FALSE(overlap(a.data(), a.size(), b.data(), b.size()));
    }
}

TEST_SUITE("http.buffer_pool") {
    using ringwork::http::BufferPool;
    using ringwork::http::ByteBuffer;

    TEST_CASE("take_used counts the idle buffers an interval took at once; trim to it keeps them") {
        BufferPool pool(256);
        CHECK(pool.take_used() == 0);
        // Three buffers out at once, then back: the interval used three.
        std::vector<ByteBuffer> out;
        for (int i = 0; i < 3; ++i) {
            out.push_back(pool.take());
        }
        for (auto& b : out) {
            CHECK(pool.give(std::move(b)));
        }
        out.clear();
        CHECK(pool.stats().misses == 3);
        CHECK(pool.idle() == 3);
        CHECK(pool.take_used() == 3);
        // Next interval: one at a time, twice; one is out when it ends.
        CHECK(pool.give(pool.take()));
        ByteBuffer held = pool.take();
        CHECK(pool.idle() == 2);
        const std::size_t used = pool.take_used();
        CHECK(used == 0); // the one out now comes back by itself; the two idle ones were not needed beyond it
        pool.trim(used);
        CHECK(pool.idle() == 0);
        CHECK(pool.give(std::move(held)));
        // An interval that takes nothing uses nothing: its trim gives everything back.
        CHECK(pool.take_used() == 0); // (the buffer given back was taken in the interval before)
        pool.trim(0);
        CHECK(pool.idle() == 0);
        CHECK(pool.stats().held == 0);
    }
}

TEST_SUITE("http.fields") {
    using ringwork::http::Arena;
    namespace detail = ringwork::http::detail;

    TEST_CASE("a field value is copied whole; CR, LF and NUL become SP wherever they are, at every length") {
        Arena arena;
        for (std::size_t n = 0; n <= 40; ++n) {
            CAPTURE(n);
            const std::string clean(n, 'v');
            CHECK(detail::copy_field_value(arena, clean) == clean);
            for (std::size_t at = 0; at < n; ++at) {
                CAPTURE(at);
                for (const char bad : {'\r', '\n', '\0'}) {
                    std::string dirty = clean;
                    dirty[at] = bad;
                    std::string want = clean;
                    want[at] = ' ';
                    CHECK(detail::copy_field_value(arena, dirty) == want);
                }
                // HTAB and other bytes (obs-text, other controls) are kept as they are.
                for (const char kept : {'\t', '\x01', '\x1f', '\x7f', '\x80', '\xff', ' '}) {
                    std::string other = clean;
                    other[at] = kept;
                    CHECK(detail::copy_field_value(arena, other) == other);
                }
            }
        }
    }

    TEST_CASE("copy_and_find_control finds any byte below 0x20 and only those, at every length and place") {
        for (std::size_t n = 0; n <= 24; ++n) {
            for (std::size_t at = 0; at <= n; ++at) { // at == n: none
                for (unsigned b = 0; b < 256; ++b) {
                    std::string s(n, '~');
                    if (at < n) {
                        s[at] = static_cast<char>(b);
                    }
                    std::string out(n, '?');
                    const bool found = detail::copy_and_find_control(out.data(), s.data(), n);
                    if (found != (at < n && b < 0x20) || out != s) {
                        FAIL_CHECK("n=" << n << " at=" << at << " byte=" << b << " found=" << found);
                    }
                }
            }
        }
    }

    TEST_CASE("header names: tokens pass; others throw at run time, named and escaped") {
        CHECK(detail::is_field_name("X-Request-ID"));
        CHECK(detail::is_field_name("!#$%&'*+-.^_`|~09azAZ"));
        using namespace std::string_view_literals;
        for (const std::string_view bad : {""sv, "X Y"sv, "X:Y"sv, "X\r\nY"sv, "X(Y)"sv, "X/Y"sv, "X\0"sv, "\xc3\xa9"sv}) {
            CAPTURE(bad);
            CHECK_FALSE(detail::is_field_name(bad));
            CHECK_THROWS_AS(ringwork::http::FieldName{bad}, std::invalid_argument);
        }
        CHECK_THROWS_WITH(ringwork::http::FieldName{std::string_view("X\r\nSet-Cookie")},
                          R"(header name "X\x0d\x0aSet-Cookie" is not a token (RFC 9110 5.6.2))");
        // A literal is checked when compiled, and its bytes kept; a run-time name is copied.
        constexpr ringwork::http::FieldName literal("Content-Type");
        static_assert(literal.literal() && literal.view() == "Content-Type");
        // A copy keeps literal(), also from a class derived from FieldName (the converting
        // template, an exact match there, would make it a run-time name).
        struct Derived : ringwork::http::FieldName {
            constexpr explicit Derived(FieldName name) : FieldName(name) {}
        };
        static constexpr Derived derived{ringwork::http::FieldName("X-Derived")};
        static_assert(ringwork::http::FieldName(derived).literal());
        const std::string run_time = "X-Run-Time";
        const ringwork::http::FieldName made(run_time);
        CHECK_FALSE(made.literal());
        Arena arena;
        CHECK(detail::keep_field_name(arena, literal).data() == literal.view().data());
        const std::string_view kept = detail::keep_field_name(arena, made);
        CHECK(kept == "X-Run-Time");
        CHECK(kept.data() != run_time.data());
        // Other strings convert, checked at run time: a const char*, a class with a conversion.
        const char* pointer = "X-Pointer";
        CHECK(ringwork::http::FieldName(pointer).view() == "X-Pointer");
        CHECK_FALSE(ringwork::http::FieldName(pointer).literal());
        const char* bad_pointer = "X Pointer";
        CHECK_THROWS_AS(ringwork::http::FieldName{bad_pointer}, std::invalid_argument);
        struct Named {
            operator std::string_view() const noexcept { return "X-Named"; } // NOLINT(google-explicit-constructor)
        };
        CHECK(ringwork::http::FieldName(Named{}).view() == "X-Named");
    }
}
