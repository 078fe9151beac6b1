#include "qvmail/cli.hpp"

#include <pwd.h>
#include <syslog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>

#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"

namespace qv {

using ojson = nlohmann::ordered_json;

void add_common_options(CLI::App& app, CommonOptions& o, unsigned which) {
    if (which & opt_json) app.add_flag("--json", o.json, "Print results as JSON, one object per line");
    if (which & opt_dry_run) app.add_flag("-n,--dry-run", o.dry_run, "Show what would change, change nothing");
    if (which & opt_yes) app.add_flag("-y,--yes", o.yes, "Do not ask for confirmation");
    if (which & opt_quiet) app.add_flag("-q,--quiet", o.quiet, "Print no warnings");
    if (which & opt_verbose) app.add_flag("-v,--verbose", o.verbose, "Say more (repeat for more)");
    if (which & opt_lock_wait)
        app.add_option("--lock-wait", o.lock_wait, "Seconds to wait for the admin lock (default 30; 0: fail at once)")
            ->type_name("SECONDS");
}

std::string json_dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

void Reporter::line(std::string_view text) const { std::cout << text << '\n'; }

void Reporter::object(const ojson& j) const { std::cout << json_dump(j) << '\n'; }

void Reporter::info(std::string_view text) const {
    if (opts_.verbose <= 0) return;
    if (opts_.json)
        std::cerr << json_dump(ojson{{"program", program_}, {"info", std::string(text)}}) << '\n';
    else
        std::cerr << program_ << ": " << text << '\n';
}

void Reporter::warning(std::string_view text) const {
    if (opts_.quiet) return;
    if (opts_.json)
        std::cerr << json_dump(ojson{{"program", program_}, {"warning", std::string(text)}}) << '\n';
    else
        std::cerr << program_ << ": warning: " << text << '\n';
}

void Reporter::error(std::string_view message, int code) const {
    if (opts_.json)
        std::cerr << json_dump(ojson{{"program", program_}, {"error", std::string(message)}, {"exit", code}}) << '\n';
    else
        std::cerr << program_ << ": " << message << '\n';
}

void Reporter::error(const Error& e, const ojson* extra) const {
    if (!opts_.json) {
        std::cerr << program_ << ": " << e.what() << '\n';
        return;
    }
    ojson j{{"program", program_}};
    if (extra)
        for (auto& [k, v] : extra->items()) j[k] = v;
    j["error"] = e.what();
    j["exit"] = static_cast<int>(e.code());
    if (auto* pe = dynamic_cast<const ParseError*>(&e)) {
        j["file"] = pe->file().string();
        j["line"] = pe->line();
    }
    std::cerr << json_dump(j) << '\n';
}

namespace {

bool hidden(const CLI::App* a) { return a->get_group().empty(); }

const CLI::Option* find_option(const CLI::App& app, std::string_view word) {
    std::string name(word.substr(0, word.find('=')));
    for (const CLI::App* a = &app; a; a = a->get_parent()) {
        for (const CLI::Option* o : a->get_options()) {
            if (name.starts_with("--") && o->check_lname(name.substr(2))) return o;
            if (!name.starts_with("--") && name.size() == 2 && o->check_sname(name.substr(1))) return o;
        }
    }
    return nullptr;
}

}  // namespace

std::vector<std::string> complete(const CLI::App& app, const Program& prog, const std::vector<std::string>& words) {
    const CLI::App* cur = &app;
    bool want_value = false;
    for (std::size_t i = 0; i + 1 < words.size(); ++i) {
        const std::string& w = words[i];
        if (want_value) {
            want_value = false;
            continue;
        }
        if (w.size() > 1 && w[0] == '-') {
            const CLI::Option* o = find_option(*cur, w);
            want_value = o && o->get_expected_min() > 0 && w.find('=') == std::string::npos;
            continue;
        }
        for (const CLI::App* s : cur->get_subcommands({}))
            if (s->check_name(w)) {
                cur = s;
                break;
            }
    }
    std::vector<std::string> out;
    if (want_value) return out;
    std::string prefix = words.empty() ? std::string() : words.back();
    auto offer = [&](const std::string& c) {
        if (c.starts_with(prefix)) out.push_back(c);
    };
    if (prefix.starts_with("-")) {
        for (const CLI::Option* o : cur->get_options()) {
            if (o->get_group().empty()) continue;
            for (auto& l : o->get_lnames()) offer("--" + l);
        }
        return out;
    }
    for (const CLI::App* s : cur->get_subcommands({}))
        if (!hidden(s)) offer(s->get_name());
    auto hook = prog.positional_completions.find(cur);
    if (hook != prog.positional_completions.end())
        for (auto& c : hook->second()) offer(c);
    return out;
}

int run(CLI::App& app, Program& prog, int argc, char** argv) {
    Reporter rep(prog.name, prog.common);
    if (argc >= 2 && std::string_view(argv[1]) == "__complete") {
        std::vector<std::string> words(argv + 2, argv + argc);
        if (!words.empty() && words[0] == "--") words.erase(words.begin());
        if (words.empty()) words.emplace_back();
        try {
            for (auto& c : complete(app, prog, words)) std::cout << c << '\n';
        } catch (const std::exception&) {
            // completion must never print errors into the user's command line
        }
        return 0;
    }
    for (int i = 1; i < argc; ++i)
        if (std::string_view(argv[i]) == "--json") prog.common.json = true;  // for parse errors

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        rep.error(std::string(e.what()) + " (see " + prog.name + " --help)", static_cast<int>(Exit::usage));
        return static_cast<int>(Exit::usage);
    } catch (const Error& e) {
        rep.error(e);
        return static_cast<int>(e.code());
    }
    if (!prog.action) {
        std::cerr << app.help();
        return static_cast<int>(Exit::usage);
    }
    try {
        return prog.action();
    } catch (const Error& e) {
        rep.error(e);
        return static_cast<int>(e.code());
    } catch (const std::exception& e) {
        rep.error(std::string("internal error: ") + e.what(), static_cast<int>(Exit::software));
        return static_cast<int>(Exit::software);
    }
}

void audit(std::string_view program, std::string_view what) {
    uid_t uid = ::getuid();
    std::string who;
    if (struct passwd* pw = ::getpwuid(uid)) who = pw->pw_name;
    else who = "uid " + std::to_string(uid);
    if (auto sudo = Env().get("SUDO_USER")) who += " (sudo from " + *sudo + ")";
    std::string ident(program);
    ::openlog(ident.c_str(), LOG_PID, LOG_MAIL);
    ::syslog(LOG_INFO, "%s: %.*s", who.c_str(), static_cast<int>(what.size()), what.data());
    ::closelog();
}

}  // namespace qv
