#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "helpers.hpp"
#include "qvmail/error.hpp"
#include "qvmail/queue.hpp"

using qvtest::TempDir;
using namespace std::string_literals;

namespace {
int code_of(std::string_view envelope) {
    try {
        qv::parse_envelope(envelope);
    } catch (const qv::QueueError& e) {
        return e.code();
    }
    return 0;
}
}  // namespace

TEST_CASE("envelopes as qmail-queue reads them on descriptor 1", "[queue]") {
    qv::Envelope e{"a@example.net", {"b@example.com", "c@example.org"}};
    std::string text = qv::format_envelope(e);
    CHECK(text == "Fa@example.net\0Tb@example.com\0Tc@example.org\0\0"s);
    auto back = qv::parse_envelope(text);
    CHECK(back.sender == e.sender);
    CHECK(back.recipients == e.recipients);
    CHECK(qv::parse_envelope("F\0\0"s).recipients.empty());  // the null sender, no recipients
    CHECK(code_of("Fa\0Tb\0"s) == qv::qq::read_error);        // cut short
    CHECK(code_of("Fa"s) == qv::qq::read_error);
    CHECK(code_of("Xa\0\0"s) == qv::qq::format);
    CHECK(code_of("Fa\0Xb\0\0"s) == qv::qq::format);
    CHECK(code_of("Fa\0\0junk"s) == qv::qq::format);
    CHECK(code_of("F" + std::string(1003, 'a') + "\0\0"s) == qv::qq::addr_too_long);
    CHECK(code_of("F" + std::string(1002, 'a') + "\0\0"s) == 0);
}

TEST_CASE("qmail-queue's exit codes, as qmail-smtpd answers them", "[queue]") {
    CHECK(qv::qq::text(0).empty());
    CHECK(qv::qq::text(11).front() == 'D');
    CHECK(qv::qq::text(31).front() == 'D');
    CHECK(qv::qq::text(40).front() == 'D');
    for (int code : {51, 52, 53, 54, 55, 61, 64, 66, 71, 81, 91, 99, 120})
        CHECK(qv::qq::text(code).front() == 'Z');
    CHECK(qv::qq::permanent(11));
    CHECK_FALSE(qv::qq::permanent(51));
    CHECK(qv::rfc822_date(0) == "1 Jan 1970 00:00:00 -0000");
    CHECK(qv::rfc822_date(1796183150) == "2 Dec 2026 03:45:50 -0000");
    CHECK(qv::rfc822_date(951868799) == "29 Feb 2000 23:59:59 -0000");
}

TEST_CASE("a message is written in notqmail's order, and only a committed one is queued", "[queue]") {
    TempDir home;
    qv::QueueDirs dirs(home / "queue");
    qv::QueueOwners owners{{::geteuid(), ::getegid()}, {::geteuid(), ::getegid()}, {::geteuid(), ::getegid()}, {}};
    auto steps = qv::init_queue(dirs, owners, false);
    CHECK(steps.size() == 106);  // notqmail's 105, and pool/
    CHECK(qv::init_queue(dirs, owners, false).empty());  // idempotent

    std::uint64_t n;
    {
        qv::QueueInjection m(dirs);
        n = m.number();
        struct stat st {};
        REQUIRE(::stat(dirs.mess(n).c_str(), &st) == 0);
        CHECK(static_cast<std::uint64_t>(st.st_ino) == n);  // mess/N has inode N
        m.write("Subject: one\n\nbody\n");
        m.write_envelope(42, 7, {"a@example.net", {"b@example.com"}});
        CHECK(qv::scan_queue(dirs).at(0).state == qv::QueuedMessage::incomplete);  // no todo/ link yet
        CHECK(m.commit_alone() == 5);
    }
    CHECK(qvtest::slurp(dirs.todo(n)) == "u42\0p7\0Fa@example.net\0Tb@example.com\0"s);
    CHECK(qvtest::slurp(dirs.mess(n)) == "Subject: one\n\nbody\n");
    CHECK(qvtest::listing(home / "queue/pid").empty());
    {
        qv::QueueInjection abandoned(dirs);  // goes out of scope unfinished: nothing is left of it
        abandoned.write("half");
    }
    auto q = qv::scan_queue(dirs);
    REQUIRE(q.size() == 1);
    CHECK(q[0].state == qv::QueuedMessage::todo);
    CHECK(q[0].sender == "a@example.net");
    CHECK(q[0].recipients.size() == 1);
    CHECK(q[0].size == 19);
    CHECK(qvtest::listing(home / "queue/intd") == std::vector<std::string>{std::to_string(n)});

    // after qmail-send's preprocessing: info/ and local/ remote/ with their D marks
    ::unlink(dirs.todo(n).c_str());
    qvtest::write(dirs.info(n), "Fa@example.net\0"s);
    qvtest::write(dirs.local(n), "Dx@example.com\0Ty@example.com\0"s);
    qvtest::write(dirs.remote(n), "Tz@remote.example\0"s);
    q = qv::scan_queue(dirs);
    REQUIRE(q.size() == 1);
    CHECK(q[0].state == qv::QueuedMessage::preprocessed);
    REQUIRE(q[0].recipients.size() == 3);
    CHECK(q[0].recipients[0].done);
    CHECK_FALSE(q[0].recipients[1].done);
    CHECK(q[0].recipients[2].remote);
    CHECK_THROWS_AS(qv::scan_queue(qv::QueueDirs(home / "nowhere")), qv::Error);
}

namespace {
// The queue laid out in `dir` (owned by the caller), for the pool tests.
qv::QueueDirs laid_out(const std::filesystem::path& dir) {
    qv::QueueDirs dirs(dir);
    qv::QueueOwners owners{{::geteuid(), ::getegid()}, {::geteuid(), ::getegid()}, {::geteuid(), ::getegid()}, {}};
    qv::init_queue(dirs, owners, false);
    return dirs;
}

// A queue in a scratch directory with its pool; queue() puts a message in through the pool.
struct PooledQueue {
    TempDir home;
    qv::QueueDirs dirs{laid_out(home / "queue")};
    qv::QueuePool pool{dirs};
    std::uint64_t queue(const char* text) { return queue_into(dirs, &pool, text); }
    static std::uint64_t queue_into(const qv::QueueDirs& dirs, qv::QueuePool* pool = nullptr, const char* text = "x\n") {
        qv::QueueInjection m(dirs, pool);
        m.write(text);
        m.write_envelope(42, 7, {"a@example.net", {"b@example.com"}});
        CHECK(m.commit_alone() == 5);
        return m.number();
    }
};
}  // namespace

TEST_CASE("a finished message's files are reused for a new one only after a flush that began later", "[queue]") {
    PooledQueue q;
    const TempDir& home = q.home;
    const qv::QueueDirs& dirs = q.dirs;
    qv::QueuePool& pool = q.pool;
    auto queue = [&](const char* text) { return q.queue(text); };
    std::uint64_t first = queue("Subject: first\n\nthe first message, longer than the second\n");
    struct stat intd {};
    REQUIRE(::stat(dirs.intd(first).c_str(), &intd) == 0);

    // qmail-send is done with it: todo/N goes first, then intd/N and mess/N go to the pool
    qv::QueueRecycler recycler(dirs);
    ::unlink(dirs.todo(first).c_str());
    recycler.remove(dirs.intd(first));
    recycler.remove(dirs.mess(first));
    CHECK(recycler.recycled() == 2);
    CHECK(qvtest::listing(home / "queue/pool").size() == 2);
    CHECK_FALSE(qv::path_exists(dirs.mess(first)));

    // no flush has begun since: a new message gets new files, and the old ones stay whole
    std::uint64_t second = queue("Subject: second\n\nbody\n");
    CHECK(second != first);
    CHECK(qvtest::listing(home / "queue/pool").size() == 2);
    ::unlink(dirs.todo(second).c_str());
    ::unlink(dirs.intd(second).c_str());
    ::unlink(dirs.mess(second).c_str());

    // after a flush that began later (the coarse clock must move on): the pooled files, renamed,
    // overwritten and cut to the new message (the first was longer: none of it is left)
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    pool.flush_starting();
    pool.flush_done();
    std::uint64_t third = queue("Subject: third\n\nbody\n");
    CHECK(qvtest::listing(home / "queue/pool").empty());
    struct stat now {};
    REQUIRE(::stat(dirs.todo(third).c_str(), &now) == 0);
    // both files came from the pool, whichever took which
    CHECK(std::set<std::uint64_t>{third, static_cast<std::uint64_t>(now.st_ino)} ==
          std::set<std::uint64_t>{first, static_cast<std::uint64_t>(intd.st_ino)});
    CHECK(qvtest::slurp(dirs.mess(third)) == "Subject: third\n\nbody\n");
    CHECK(qvtest::slurp(dirs.todo(third)) == "u42\0p7\0Fa@example.net\0Tb@example.com\0"s);

    // a file with another name still (todo/N) is only unlinked: never emptied for reuse
    ::unlink(dirs.mess(third).c_str());
    recycler.remove(dirs.intd(third));
    CHECK(qvtest::listing(home / "queue/pool").empty());
    CHECK(qvtest::slurp(dirs.todo(third)) == "u42\0p7\0Fa@example.net\0Tb@example.com\0"s);
}

TEST_CASE("an intd/N left by a sender that died does not stop the next message N", "[queue]") {
    PooledQueue q;
    const qv::QueueDirs& dirs = q.dirs;
    qv::QueuePool& pool = q.pool;
    auto queue = [&](const char* text) { return q.queue(text); };
    std::uint64_t first = queue("Subject: first\n\nbody\n");
    // preprocessed, then killed between todo/N and intd/N; the delivery finished: mess/N to the pool
    qv::QueueRecycler recycler(dirs);
    ::unlink(dirs.todo(first).c_str());
    recycler.remove(dirs.mess(first));
    REQUIRE(qv::path_exists(dirs.intd(first)));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    pool.flush_starting();
    pool.flush_done();
    // the next message is number N again (mess/N's inode, from the pool): its intd/N replaces the old one
    std::uint64_t second = queue("Subject: second\n\nbody\n");
    CHECK(second == first);
    CHECK(qvtest::slurp(dirs.todo(second)) == "u42\0p7\0Fa@example.net\0Tb@example.com\0"s);
    CHECK(qvtest::slurp(dirs.mess(second)) == "Subject: second\n\nbody\n");
}

TEST_CASE("the trigger names the queued messages; anything else, or a full FIFO, asks for a scan", "[queue]") {
    TempDir home;
    qv::QueueDirs dirs = laid_out(home / "queue");
    int rfd = ::open(dirs.trigger().c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    REQUIRE(rfd >= 0);
    qv::TriggerReader reader(rfd);
    CHECK(reader.drain().numbers.empty());

    // qmail-queued names its batch; qmail-queue (alone) names its message
    qv::pull_trigger(dirs, {17, 123456789012ULL});
    PooledQueue::queue_into(dirs);
    auto news = reader.drain();
    REQUIRE(news.numbers.size() == 3);
    CHECK(news.numbers[0] == 17);
    CHECK(news.numbers[1] == 123456789012ULL);
    CHECK_FALSE(news.scan);

    // qmail's byte (notqmail's qmail-queue, qmailctl) and a stranger's text mean "look at todo/"
    qv::pull_trigger(dirs);
    news = reader.drain();
    CHECK(news.scan);
    CHECK(news.numbers.empty());
    int wfd = ::open(dirs.trigger().c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    REQUIRE(wfd >= 0);
    REQUIRE(::write(wfd, "x12\n", 4) == 4);
    CHECK(reader.drain().scan);

    // a record cut between two reads waits for its end
    REQUIRE(::write(wfd, "4", 1) == 1);
    news = reader.drain();
    CHECK(news.numbers.empty());
    CHECK_FALSE(news.scan);
    REQUIRE(::write(wfd, "2\n", 2) == 2);
    news = reader.drain();
    REQUIRE(news.numbers.size() == 1);
    CHECK(news.numbers[0] == 42);

    // a writer that finds the FIFO full says nothing: the reader, draining it full, scans
    std::vector<std::uint64_t> many(20000);
    for (std::size_t i = 0; i < many.size(); ++i) many[i] = 1000000 + i;
    qv::pull_trigger(dirs, many);  // about 160 KB into a 64 KB FIFO
    news = reader.drain();
    CHECK(news.scan);
    CHECK(news.numbers.size() < many.size());
    CHECK_FALSE(reader.drain().scan);  // and only then
    ::close(wfd);
    ::close(rfd);
}
