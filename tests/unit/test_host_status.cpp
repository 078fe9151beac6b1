#include <catch2/catch.hpp>

#include "qvmail/host_status.hpp"

using qv::parse_send_log_line;
using qv::SendLogEvent;

namespace {
const std::string kLine = "delivery 7: msg 42 remote someone@example.net: deferral: Connected_to_192.0.2.1_but... (1.002 s)";
constexpr std::time_t kTime = 1796291991;  // 2026-12-03 09:59:51 UTC
}  // namespace

TEST_CASE("a delivery line's result, with the stamp of each kind of logger", "[status]") {
    for (const std::string stamp : {"@400000006b113da1000003e8 ", "1796291991.123456 mail qmail-send[812]: ",
                                    "2026-12-03T10:59:51+0100 mail qmail-send[812]: ", "2026-12-03_09:59:51.12345 ",
                                    "2026-12-03 09:59:51 ", "2026-12-03T09:59:51Z ",
                                    "2026-12-03T11:59:51.5+02:00 mail qmail-send[812]: ",
                                    "2026-12-03T04:59:51-0500 mail qmail-send[812]: "}) {
        INFO(stamp);
        auto e = parse_send_log_line(stamp + kLine);
        REQUIRE(e);
        CHECK(e->kind == SendLogEvent::deferred);
        REQUIRE(e->time);
        CHECK(*e->time == kTime);
    }
    auto plain = parse_send_log_line("delivery 1: msg 5 local joe@example.com: success: delivered (0.001 s)");
    REQUIRE(plain);
    CHECK(plain->kind == SendLogEvent::delivered);
    CHECK_FALSE(plain->time);
    // the remote host's words may hold any result word: the first one counts
    auto tricky = parse_send_log_line("delivery 3: msg 8 remote a@b.example: deferral: 451 it: success: maybe later (1 s)");
    REQUIRE(tricky);
    CHECK(tricky->kind == SendLogEvent::deferred);
    auto failed = parse_send_log_line("@400000006b113da1000003e8 delivery 2: msg 6 remote a@b.example: failure: 550_no (0.1 s)");
    REQUIRE(failed);
    CHECK(failed->kind == SendLogEvent::bounced);
}

TEST_CASE("other lines of qmail-send's log are not deliveries", "[status]") {
    CHECK_FALSE(parse_send_log_line("@400000006b113da1000003e8 new msg 42"));
    CHECK_FALSE(parse_send_log_line("@400000006b113da1000003e8 status: qmail-send starting on /var/indimail/queue"));
    CHECK_FALSE(parse_send_log_line("delivery 3: msg 7 local joe@example.com: something else"));
    CHECK_FALSE(parse_send_log_line(""));
}
