#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "helpers.hpp"
#include "qvmail/error.hpp"
#include "qvmail/lock.hpp"
#include "qvmail/paths.hpp"

using namespace std::chrono_literals;
using qvtest::TempDir;

TEST_CASE("a held lock makes a second taker fail with a temporary error", "[lock]") {
    TempDir d;
    qv::FileLock first(d / "l", 0ms);
    try {
        qv::FileLock second(d / "l", 0ms);
        FAIL("took a held lock");
    } catch (const qv::Error& e) {
        CHECK(e.code() == qv::Exit::tempfail);
        CHECK_THAT(e.what(), Catch::Contains("lock"));
    }
}

TEST_CASE("a waiting taker gets the lock once it is released", "[lock]") {
    TempDir d;
    auto holder = std::make_unique<qv::FileLock>(d / "l", 0ms);
    std::thread releaser([&] {
        std::this_thread::sleep_for(100ms);
        holder.reset();
    });
    auto start = std::chrono::steady_clock::now();
    qv::FileLock second(d / "l", 5s);
    auto waited = std::chrono::steady_clock::now() - start;
    releaser.join();
    CHECK(waited >= 50ms);
}

TEST_CASE("the admin lock lives in QMAILHOME", "[lock]") {
    TempDir d;
    auto paths = qv::Paths::from(qv::Env(qv::Env::Vars{{"QMAILHOME", d.path().string()}}));
    {
        auto l = qv::admin_lock(paths, 0ms);
        CHECK(l.path() == d / ".qvmail.lock");
        CHECK_THROWS_AS(qv::admin_lock(paths, 0ms), qv::Error);
    }
    CHECK_NOTHROW(qv::admin_lock(paths, 0ms));
}

TEST_CASE("a lock in a missing directory cannot be created", "[lock]") {
    TempDir d;
    try {
        qv::FileLock l(d / "missing" / "l", 0ms);
        FAIL("locked in a missing directory");
    } catch (const qv::Error& e) {
        CHECK(e.code() == qv::Exit::cantcreat);
    }
}
