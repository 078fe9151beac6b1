#include "qvmail/cli.hpp"

#include <pwd.h>
#include <syslog.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>

#include "qvmail/domain.hpp"
#include "qvmail/error.hpp"
#include "qvmail/password.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"

namespace qv {

void add_common_options(CLI::App& app, CommonOptions& o, unsigned which) {
    if (which & opt_json) app.add_flag("--json", o.json, "Print results as JSON, one object per line");
    if (which & opt_dry_run) app.add_flag("-n,--dry-run", o.dry_run, "Show what would change, change nothing");
    if (which & opt_yes) app.add_flag("-y,--yes", o.yes, "Do not ask for confirmation");
    if (which & opt_quiet_short)
        app.add_flag("-q,--quiet", o.quiet, "Print no warnings");
    else if (which & opt_quiet)
        app.add_flag("--quiet", o.quiet, "Print no warnings");
    if (which & opt_verbose) app.add_flag("-v,--verbose", o.verbose, "Say more (repeat for more)");
    if (which & opt_lock_wait)
        app.add_option(
               "--lock-wait", o.lock_wait,
               "Seconds to wait for the admin lock (default " + std::to_string(o.lock_wait) + "; 0: fail at once)")
            ->type_name("SECONDS");
}

void Reporter::line(std::string_view text) const {
    std::cout << text << '\n';
}

void Reporter::steps(const std::vector<std::string>& steps) const {
    if (!show_steps() || opts_.json) return;
    for (auto& s : steps) line((opts_.dry_run ? "would " : "") + s);
}

std::optional<FileLock> lock_for_change(const Paths& paths, const CommonOptions& opts) {
    if (opts.dry_run) return std::nullopt;
    return admin_lock(paths, std::chrono::seconds(opts.lock_wait));
}

void Reporter::object(const Json& j) const {
    std::cout << j.dump() << '\n';
}

void Reporter::info(std::string_view text) const {
    if (opts_.verbose <= 0) return;
    if (opts_.json)
        std::cerr << Json::object().set("program", program_).set("info", text).dump() << '\n';
    else
        std::cerr << program_ << ": " << text << '\n';
}

void Reporter::warning(std::string_view text) const {
    if (opts_.quiet) return;
    if (opts_.json)
        std::cerr << Json::object().set("program", program_).set("warning", text).dump() << '\n';
    else
        std::cerr << program_ << ": warning: " << text << '\n';
}

void Reporter::error(std::string_view message, int code) const {
    if (opts_.json)
        std::cerr << Json::object().set("program", program_).set("error", message).set("exit", code).dump() << '\n';
    else
        std::cerr << program_ << ": " << message << '\n';
}

void Reporter::error(const Error& e, const Json* extra) const {
    if (!opts_.json) {
        std::cerr << program_ << ": " << e.what() << '\n';
        return;
    }
    Json j = extra ? *extra : Json::object();
    j.set("program", program_).set("error", e.what()).set("exit", static_cast<int>(e.code()));
    if (auto* pe = dynamic_cast<const ParseError*>(&e)) j.set("file", pe->file().string()).set("line", pe->line());
    std::cerr << j.dump() << '\n';
}

namespace {

bool hidden(const CLI::App* a) {
    return a->get_group().empty();
}

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
    const CLI::Option* want_value = nullptr;  // the option whose value is being typed
    for (std::size_t i = 0; i + 1 < words.size(); ++i) {
        const std::string& w = words[i];
        if (want_value) {
            want_value = nullptr;
            continue;
        }
        if (w.size() > 1 && w[0] == '-') {
            const CLI::Option* o = find_option(*cur, w);
            if (o && o->get_expected_min() > 0 && w.find('=') == std::string::npos) want_value = o;
            continue;
        }
        for (const CLI::App* s : cur->get_subcommands({}))
            if (s->check_name(w)) {
                cur = s;
                break;
            }
    }
    std::vector<std::string> out;
    std::string prefix = words.empty() ? std::string() : words.back();
    auto offer = [&](const std::string& c) {
        if (c.starts_with(prefix)) out.push_back(c);
    };
    if (want_value) {
        auto hook = prog.value_completions.find(want_value);
        if (hook != prog.value_completions.end())
            for (auto& c : hook->second(prefix)) offer(c);
        return out;
    }
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
        for (auto& c : hook->second(prefix)) offer(c);
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

void add_mysql_options(CLI::App& app, Program& prog) {
    app.add_option("--mysql-defaults-file", prog.mysql.defaults_file,
                   "Use the MariaDB backend with the settings of this option file")
        ->type_name("FILE");
    app.add_option("--mysql-group", prog.mysql.group,
                   "Use the MariaDB backend with this option-file group (with [client])")
        ->type_name("GROUP");
}

void add_password_options(CLI::App& app, PasswordOptions& o) {
    app.add_flag("--password-stdin", o.from_stdin, "Read the password from the first line of standard input");
    app.add_option("--password-file", o.file, "Read the password from the first line of FILE")->type_name("FILE");
    app.add_option("-r,--random", o.random_length, "Make a random password of LEN characters and print it")
        ->type_name("LEN")
        ->check(CLI::Range(8, 128));
    app.add_flag("-e,--encrypted", o.prehashed, "The password given is already a crypt(3) hash: store it as it is");
    app.add_option("-h,--hash", o.hash_method, "Hash method: MD5, SHA-256, SHA-512 (default) or YESCRYPT")
        ->type_name("METHOD");
    app.add_flag("-C,--cram", o.cram,
                 "Keep the clear-text password too ({CRAM} in the scram field), so that CRAM-MD5 works");
}

namespace {
std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}
}  // namespace

Progress::Progress(const Reporter& rep, std::string what) : what_(std::move(what)) {
    enabled_ = !rep.json() && !rep.options().quiet && ::isatty(2);
    // QV_PROGRESS_DELAY: milliseconds of work before the line shows (default 1000)
    const char* delay = std::getenv("QV_PROGRESS_DELAY");
    delay_ms_ = delay && *delay ? std::strtoll(delay, nullptr, 10) : 1000;
    start_ms_ = now_ms();
}

Progress::~Progress() {
    clear();
}

void Progress::update(std::uint64_t done, std::uint64_t total) {
    if (!enabled_) return;
    std::int64_t now = now_ms();
    if (now - start_ms_ < delay_ms_ || (drawn_ && now - last_ms_ < 200)) return;
    last_ms_ = now;
    std::string line = "\r" + what_ + ": " + std::to_string(done);
    if (total) line += " of " + std::to_string(total) + " (" + std::to_string(done * 100 / total) + "%)";
    line += "\033[K";
    [[maybe_unused]] ssize_t n = ::write(2, line.data(), line.size());
    drawn_ = true;
}

void Progress::clear() {
    if (!drawn_) return;
    static const char erase[] = "\r\033[K";
    [[maybe_unused]] ssize_t n = ::write(2, erase, sizeof erase - 1);
    drawn_ = false;
}

bool on_terminal() {
    return ::isatty(0) && ::isatty(2);
}

namespace {

std::string read_secret_line(std::istream& in) {
    std::string line;
    std::getline(in, line);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    return line;
}

std::string prompt_secret(const std::string& prompt) {
    std::cerr << prompt << std::flush;
    struct termios old {};
    bool restore = ::tcgetattr(0, &old) == 0;
    if (restore) {
        struct termios quiet = old;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        ::tcsetattr(0, TCSAFLUSH, &quiet);
    }
    std::string line = read_secret_line(std::cin);
    if (restore) ::tcsetattr(0, TCSAFLUSH, &old);
    std::cerr << '\n';
    return line;
}

}  // namespace

ObtainedPassword obtain_password(const PasswordOptions& o, const Reporter& rep, std::string_view for_whom,
                                 HashMethod default_method) {
    int sources = (o.positional ? 1 : 0) + (o.from_stdin ? 1 : 0) + (o.file ? 1 : 0) + (o.random_length ? 1 : 0);
    if (sources > 1)
        throw Error(Exit::usage,
                    "give the password one way only: as an argument, --password-stdin, "
                    "--password-file or -r");
    if (o.prehashed && o.random_length) throw Error(Exit::usage, "-e and -r cannot go together");
    HashMethod method = default_method;
    if (o.hash_method) {
        auto m = parse_hash_method(*o.hash_method);
        if (!m)
            throw Error(Exit::usage, "unknown hash method '" + *o.hash_method + "' (MD5, SHA-256, SHA-512, YESCRYPT)");
        method = *m;
    }
    ObtainedPassword out;
    std::string clear;
    if (o.random_length) {
        clear = random_password(o.random_length);
        out.generated = clear;
    } else if (o.positional) {
        rep.warning(
            "a password on the command line can be read by other users; prefer --password-stdin or "
            "--password-file");
        clear = *o.positional;
    } else if (o.from_stdin) {
        clear = read_secret_line(std::cin);
    } else if (o.file) {
        std::ifstream f(*o.file);
        if (!f) throw sys_error(Exit::noinput, "cannot read the password file", *o.file, errno);
        clear = read_secret_line(f);
    } else if (on_terminal()) {
        for (int attempt = 0;; ++attempt) {
            std::string a = prompt_secret("New password for " + std::string(for_whom) + ": ");
            std::string b = prompt_secret("Retype new password: ");
            if (a == b) {
                clear = a;
                break;
            }
            if (attempt == 2) throw Error(Exit::dataerr, "the passwords did not match");
            std::cerr << "Passwords do not match, try again\n";
        }
    } else {
        throw Error(Exit::usage, "no password for " + std::string(for_whom) +
                                     ": use --password-stdin, --password-file FILE or -r LEN (or run on a terminal)");
    }
    if (o.cram && o.prehashed && !o.hash_method)
        throw Error(Exit::usage, "-C keeps the clear-text password for CRAM-MD5, and -e gives a hash: use one");
    if (o.prehashed && !o.hash_method) {
        if (!is_crypt_hash(clear))
            throw Error(Exit::dataerr, "-e: the value given is not a crypt(3) hash this system can check");
        out.hash = clear;
        return out;
    }
    if (auto why = password_problem(clear)) throw Error(Exit::dataerr, *why);
    out.hash = hash_password(clear, method);
    if (o.cram) out.scram = "{CRAM}" + clear;
    wipe(clear);
    return out;
}

bool confirm(const std::string& question) {
    if (!on_terminal()) return false;
    std::cerr << question << " [y/N] " << std::flush;
    std::string answer;
    std::getline(std::cin, answer);
    return answer == "y" || answer == "Y" || answer == "yes" || answer == "YES";
}

void Unsupported::add(CLI::App& app, const std::string& names, bool takes_value, std::string why) {
    Entry e{names, std::move(why), std::make_shared<bool>(false), std::make_shared<std::string>()};
    if (takes_value)
        app.add_option(names, *e.value)->group("");
    else
        app.add_flag(names, *e.flag)->group("");
    entries_.push_back(std::move(e));
}

void Unsupported::check() const {
    for (auto& e : entries_)
        if (*e.flag || !e.value->empty()) throw Error(Exit::usage, e.name + " is not supported: " + e.why);
}

std::vector<std::string> complete_domain_names(const std::string&) {
    std::vector<std::string> out;
    for (auto& d : list_domains(Paths::from_env())) out.push_back(d.name);
    return out;
}

namespace {

// "jo" offers joe@example.com and john@example.org; "jo@ex" narrows to domains starting "ex". `names`:
// the local parts of a domain to offer; with `domains`, the domain names themselves too.
std::vector<std::string> complete_in_domains(const std::string& prefix,
                                             const std::function<std::vector<std::string>(Store&, const Domain&)>& names,
                                             bool domains) {
    constexpr std::size_t kLimit = 1000;
    Paths paths = Paths::from_env();
    std::size_t at = prefix.find('@');
    std::string local = prefix.substr(0, at);
    std::string dompref = at == std::string::npos ? "" : prefix.substr(at + 1);
    auto store = open_store(paths);
    std::vector<std::string> out;
    for (auto& d : list_domains(paths)) {
        if (domains && at == std::string::npos && d.name.starts_with(prefix) && out.size() < kLimit)
            out.push_back(d.name);
        if (!d.name.starts_with(dompref)) continue;
        for (auto& n : names(*store, d))
            if (n.starts_with(local) && out.size() < kLimit) out.push_back(n + "@" + d.name);
    }
    return out;
}

}  // namespace

std::vector<std::string> complete_addresses(const std::string& prefix) {
    return complete_in_domains(
        prefix,
        [](Store& s, const Domain& d) {
            std::vector<std::string> out;
            for (auto& u : s.users(d.ref())) out.push_back(u.name);
            return out;
        },
        false);
}

std::vector<std::string> complete_aliases(const std::string& prefix) {
    return complete_in_domains(prefix, [](Store& s, const Domain& d) { return s.aliases(d.ref()); }, true);
}

void audit(std::string_view program, std::string_view what) {
    uid_t uid = ::getuid();
    std::string who;
    if (struct passwd* pw = ::getpwuid(uid))
        who = pw->pw_name;
    else
        who = "uid " + std::to_string(uid);
    if (auto sudo = Env().get("SUDO_USER")) who += " (sudo from " + *sudo + ")";
    std::string ident(program);
    ::openlog(ident.c_str(), LOG_PID, LOG_MAIL);
    ::syslog(LOG_INFO, "%s: %.*s", who.c_str(), static_cast<int>(what.size()), what.data());
    ::closelog();
}

}  // namespace qv

namespace qv {

std::string local_time_text(std::int64_t unix_seconds) {
    char buf[32];
    std::tm tm{};
    const std::time_t t = static_cast<std::time_t>(unix_seconds);
    ::localtime_r(&t, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

}  // namespace qv
