// Fuzz target: the cdb reader must refuse or read any file without reading outside it.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_input.hpp"
#include "qvmail/cdb.hpp"
#include "qvmail/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static qvfuzz::MemFile file;
    file.set(data, size);
    try {
        qv::CdbReader db(file.path());
        (void)db.header_records();
        for (const char* k : {"", "127.0.0.1", "10.1.1.", "=", "dup"}) {
            (void)db.find(k);
            (void)db.find_all(k);
        }
        std::vector<std::string> keys;
        try {
            db.for_each([&](std::string_view k, std::string_view) {
                if (keys.size() < 64) keys.emplace_back(k);
            });
        } catch (const qv::Error&) {
        }
        for (auto& k : keys) (void)db.find_all(k);
        db.verify();
    } catch (const qv::Error&) {
        // refused: fine
    }
    return 0;
}
