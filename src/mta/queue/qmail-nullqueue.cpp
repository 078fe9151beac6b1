// qmail-nullqueue - accept a message as qmail-queue would, and throw it away. See qmail-queue(8).
// For BOUNCEQUEUE (bounces nobody wants) and tests: reads descriptors 0 and 1 to their end, exits 0.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

namespace {
int drain(int fd) {
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return 54;
        if (n == 0) return 0;
    }
}
}  // namespace

int main(int argc, char** argv) {
    if (argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "--version") == 0)) {
        std::cout << (argv[1][2] == 'v' ? "qmail-nullqueue " QV_VERSION "\n"
                                         : "usage: qmail-nullqueue  (reads a message on descriptor 0 and its envelope on 1,\n"
                                           "discards both and exits 0). See qmail-queue(8).\n");
        return 0;
    }
    if (int r = drain(0)) return r;
    return drain(1);
}
