#include <sys/stat.h>
#include <unistd.h>
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
}

TEST_CASE("a message is written in notqmail's order, and only a committed one is queued", "[queue]") {
    TempDir home;
    qv::QueueDirs dirs(home / "queue");
    qv::QueueOwners owners{{::geteuid(), ::getegid()}, {::geteuid(), ::getegid()}, {::geteuid(), ::getegid()}, {}};
    auto steps = qv::init_queue(dirs, owners, false);
    CHECK(steps.size() == 105);
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
