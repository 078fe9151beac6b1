// qvmail - the multi-call binary behind every qvmail command. Run as vadddomain (a symlink), it is
// vadddomain; run as "qvmail vadddomain ...", likewise.
#include <cstdio>
#include <cstring>
#include <string_view>

#include "commands.hpp"

namespace {

struct Entry {
    const char* name;
    int (*main)(int, char**);
};

constexpr Entry kCommands[] = {
    {"qmailctl", qv::cmd_qmailctl::main},
    {"vadddomain", qv::cmd_vadddomain::main},
    {"vdeldomain", qv::cmd_vdeldomain::main},
    {"vdominfo", qv::cmd_vdominfo::main},
    {"vmoddomain", qv::cmd_vmoddomain::main},
    {"vadduser", qv::cmd_vadduser::main},
    {"vdeluser", qv::cmd_vdeluser::main},
    {"vmoduser", qv::cmd_vmoduser::main},
    {"vpasswd", qv::cmd_vpasswd::main},
    {"vuserinfo", qv::cmd_vuserinfo::main},
    {"clearopensmtp", qv::cmd_clearopensmtp::main},
    {"vchkpass", qv::cmd_vchkpass::main},
    {"vcfilter", qv::cmd_vcfilter::main},
    {"valias", qv::cmd_valias::main},
    {"vsetuserquota", qv::cmd_vsetuserquota::main},
    {"vrenameuser", qv::cmd_vrenameuser::main},
    {"vrenamedomain", qv::cmd_vrenamedomain::main},
    {"vdeloldusers", qv::cmd_vdeloldusers::main},
    {"vlimit", qv::cmd_vlimit::main},
    {"vaddaliasdomain", qv::cmd_vaddaliasdomain::main},
};

int dispatch(std::string_view name, int argc, char** argv) {
    for (const Entry& e : kCommands)
        if (name == e.name) return e.main(argc, argv);
    return -1;
}

}  // namespace

int main(int argc, char** argv) {
    const char* base = argc > 0 ? std::strrchr(argv[0], '/') : nullptr;
    std::string_view name = base ? base + 1 : (argc > 0 ? argv[0] : "qvmail");
    int rc = dispatch(name, argc, argv);
    if (rc >= 0) return rc;
    if (argc > 1) {
        rc = dispatch(argv[1], argc - 1, argv + 1);
        if (rc >= 0) return rc;
        std::fprintf(stderr, "qvmail: unknown command '%s'\n", argv[1]);
    }
    std::fprintf(stderr, "usage: qvmail COMMAND [ARGS...], or run a command through its link. Commands:\n");
    for (const Entry& e : kCommands) std::fprintf(stderr, "  %s\n", e.name);
    return 64;
}
