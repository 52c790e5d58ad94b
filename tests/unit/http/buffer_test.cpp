// SPDX-License-Identifier: MIT
// Arena: the per-request bump allocator (copied header values, a rebased head).
#include <ringwork/http/buffer.hpp>

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
