// Fuzz target: the envelope qmail-queue reads on descriptor 1. Properties: it parses or throws
// QueueError with one of qmail-queue's codes (11, 54, 91); a parsed envelope written back is the input
// byte for byte, and parses to the same sender and recipients.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "qvmail/queue.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        qv::Envelope e = qv::parse_envelope(text);
        std::string again = qv::format_envelope(e);
        if (again != text) std::abort();
        qv::Envelope back = qv::parse_envelope(again);
        if (back.sender != e.sender || back.recipients != e.recipients) std::abort();
        if (e.sender.size() >= qv::kQueueAddr) std::abort();
        for (auto& r : e.recipients)
            if (r.size() >= qv::kQueueAddr) std::abort();
    } catch (const qv::QueueError& err) {
        int c = err.code();
        if (c != qv::qq::addr_too_long && c != qv::qq::read_error && c != qv::qq::format) std::abort();
    }
    return 0;
}
