// Benchmark helper: CHECKRELAY-style lookups in a loop, through the same Store::find_grant that
// `qmailctl relay test` uses, with every tenth request a POP/IMAP login renewing a grant (REPLACE, as
// vchkpass does), until standard input closes; then one JSON line of latency figures.
//   qv_relay_lookup ROWS     (QMAILHOME's control/host.mysql names the server)
// Rows are those bench/clearopensmtp.py makes: u<n>@example.com from 10.a.b.c (n = a*65536 + b*256 + c),
// the even ones fresh.
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "qvmail/mysql.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"

namespace {

std::string ip_of(long n) {
    return "10." + std::to_string(n / 65536) + "." + std::to_string(n / 256 % 256) + "." + std::to_string(n % 256);
}

double quantile(const std::vector<double>& v, double f) {
    return v.empty() ? 0.0 : v[std::min(v.size() - 1, static_cast<std::size_t>(f * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: qv_relay_lookup ROWS\n");
        return 64;
    }
    long rows = std::max(2L, std::atol(argv[1]));
    auto config = qv::mysql_config(qv::Paths::from_env());
    if (!config) {
        std::fprintf(stderr, "qv_relay_lookup: no MariaDB configured\n");
        return 78;
    }
    auto store = qv::make_mysql_store(*config);
    std::mt19937_64 rng(42);
    std::uniform_int_distribution<long> pick(1, rows);
    std::vector<double> reads, writes;
    std::uint64_t found = 0, iteration = 0;
    std::printf("ready\n");
    std::fflush(stdout);
    for (;;) {
        pollfd p{0, POLLIN, 0};
        if (::poll(&p, 1, 0) > 0) {
            char c;
            if (::read(0, &c, 1) <= 0) break;
        }
        long n = pick(rng);
        std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
        auto t0 = std::chrono::steady_clock::now();
        bool write = ++iteration % 10 == 0;
        if (write) {
            long k = std::max(2L, n - n % 2);  // a fresh row: the count of rows does not change
            store->record_grant({"u" + std::to_string(k) + "@example.com", ip_of(k), now});
        } else if (store->find_grant(ip_of(n), std::nullopt, now - 3600)) {
            ++found;
        }
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        (write ? writes : reads).push_back(ms);
        ::usleep(1000);  // at most about 1,000 requests a second: a busy SMTP and POP server
    }
    std::sort(reads.begin(), reads.end());
    std::sort(writes.begin(), writes.end());
    std::printf(
        "{\"lookups\": %zu, \"found\": %llu, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, "
        "\"writes\": %zu, \"write_p99_ms\": %.3f, \"write_max_ms\": %.3f}\n",
        reads.size(), static_cast<unsigned long long>(found), quantile(reads, 0.5), quantile(reads, 0.99),
        reads.empty() ? 0.0 : reads.back(), writes.size(), quantile(writes, 0.99),
        writes.empty() ? 0.0 : writes.back());
    return 0;
}
