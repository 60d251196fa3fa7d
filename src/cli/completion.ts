// `streamgate completion bash|zsh|fish`: shell completion scripts generated from the command tree and its flags.
import { UsageError } from "./args.js";
import { type Command, type CommandGroup, defineCommand } from "./command.js";

type Tree = Readonly<Record<string, Command | CommandGroup>>;

const shells = ["bash", "zsh", "fish"] as const;

function flagsOf(command: Command): string[] {
  return [...Object.keys(command.spec.options).map((name) => `--${name}`), "--help"];
}

/** A bash completion function (zsh loads it through bashcompinit). */
export function bashCompletion(tree: Tree): string {
  const top = [...Object.keys(tree), "help"].join(" ");
  const cases = Object.entries(tree).map(([name, entry]) => {
    if ("spec" in entry) return `    ${name}) words="${flagsOf(entry).join(" ")}";;`;
    const inner = Object.entries(entry.commands)
      .map(([sub, command]) => `        ${sub}) words="${flagsOf(command).join(" ")}";;`)
      .join("\n");
    return [
      `    ${name})`,
      `      if [ "$COMP_CWORD" -eq 2 ]; then words="${Object.keys(entry.commands).join(" ")}"; else`,
      `      case "\${COMP_WORDS[2]}" in`,
      inner,
      "      esac; fi;;",
    ].join("\n");
  });
  return [
    "# streamgate completion for bash: source <(streamgate completion bash)",
    "_streamgate() {",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell text, not a template
    '  local cur="${COMP_WORDS[COMP_CWORD]}" words=""',
    '  if [ "$COMP_CWORD" -eq 1 ]; then',
    `    words="${top} --help --version"`,
    "  else",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell text, not a template
    '  case "${COMP_WORDS[1]}" in',
    ...cases,
    `    help) words="${Object.keys(tree).join(" ")}";;`,
    "  esac",
    "  fi",
    '  COMPREPLY=($(compgen -W "$words" -- "$cur"))',
    "}",
    "complete -o default -F _streamgate streamgate",
    "",
  ].join("\n");
}

/** zsh: the bash function through bashcompinit. */
export function zshCompletion(tree: Tree): string {
  return [
    "# streamgate completion for zsh: source <(streamgate completion zsh)",
    "autoload -U +X compinit && compinit",
    "autoload -U +X bashcompinit && bashcompinit",
    bashCompletion(tree).split("\n").slice(1).join("\n"),
  ].join("\n");
}

/** fish completions. */
export function fishCompletion(tree: Tree): string {
  const quote = (text: string) => `'${text.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
  const lines = ["# streamgate completion for fish: streamgate completion fish | source", "complete -c streamgate -f"];
  const flagLines = (condition: string, command: Command) =>
    Object.entries(command.spec.options).map(
      ([flag, option]) =>
        `complete -c streamgate -n ${quote(condition)} -l ${flag}${option.type === "string" ? " -r" : ""} -d ${quote(option.description)}`,
    );
  for (const [name, entry] of Object.entries(tree)) {
    const summary = "spec" in entry ? entry.spec.summary : entry.summary;
    lines.push(`complete -c streamgate -n __fish_use_subcommand -a ${name} -d ${quote(summary)}`);
    if ("spec" in entry) {
      lines.push(...flagLines(`__fish_seen_subcommand_from ${name}`, entry));
      continue;
    }
    const subs = Object.keys(entry.commands).join(" ");
    for (const [sub, command] of Object.entries(entry.commands)) {
      lines.push(
        `complete -c streamgate -n ${quote(`__fish_seen_subcommand_from ${name}; and not __fish_seen_subcommand_from ${subs}`)} -a ${sub} -d ${quote(command.spec.summary)}`,
      );
      lines.push(...flagLines(`__fish_seen_subcommand_from ${name}; and __fish_seen_subcommand_from ${sub}`, command));
    }
  }
  return `${lines.join("\n")}\n`;
}

/** The `completion` command over the tree `commands()` returns (a function: the tree includes this command). */
export function createCompletionCommand(commands: () => Tree): Command {
  return defineCommand(
    {
      path: "completion",
      summary: "Print a shell completion script for bash, zsh or fish.",
      details:
        "bash: add `source <(streamgate completion bash)` to ~/.bashrc; zsh: `source <(streamgate completion zsh)`\n" +
        "in ~/.zshrc; fish: `streamgate completion fish > ~/.config/fish/completions/streamgate.fish`.",
      positionals: ["SHELL"],
      options: {},
      examples: ["streamgate completion bash", "streamgate completion fish"],
    },
    async ({ positionals }, io) => {
      const shell = positionals[0]!;
      if (!(shells as readonly string[]).includes(shell)) {
        throw new UsageError(`unknown shell ${JSON.stringify(shell)}: expected bash, zsh or fish`);
      }
      const tree = commands();
      io.stdout.write(
        shell === "bash" ? bashCompletion(tree) : shell === "zsh" ? zshCompletion(tree) : fishCompletion(tree),
      );
      return 0;
    },
  );
}
