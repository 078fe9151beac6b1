#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "helpers.hpp"
#include "qvmail/error.hpp"
#include "qvmail/group_sync.hpp"

using qvtest::TempDir;

TEST_CASE("concurrent flushes of one file system share a syncfs; a known device opens nothing twice", "[group_sync]") {
    TempDir dir;
    struct stat st {};
    REQUIRE(::stat(dir.path().c_str(), &st) == 0);
    qv::GroupSync group;

    group.sync(dir.path(), st.st_dev);  // opened once, then kept
    group.sync(dir / "elsewhere-no-matter", st.st_dev);  // the kept descriptor: this path is never opened
    CHECK(group.requests() == 2);
    CHECK(group.flushes() == 2);  // each waited for a flush begun after it asked

    // a device the path does not lie on: the flush goes where the path is, and nothing is kept for it
    group.sync(dir.path(), st.st_dev + 1);
    CHECK_THROWS_AS(group.sync(dir / "elsewhere-no-matter", st.st_dev + 1), qv::Error);
    CHECK_THROWS_AS(group.sync(dir / "missing"), qv::Error);

    // eight threads, 50 requests each: every one answered, by fewer flushes than requests
    const std::uint64_t before = group.flushes();
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 50; ++i) group.sync(dir.path(), st.st_dev);
        });
    for (auto& t : threads) t.join();
    CHECK(group.requests() == 3 + 400);
    CHECK(group.flushes() - before < 400);
}
