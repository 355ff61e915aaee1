using System.CommandLine;

namespace VfioLab.Cli;

/// <summary>A command that takes free arguments would take a mistyped option (<c>--chek</c>) as one of them and go on
/// to look for a file of that name; this refuses such a value as an unknown option instead, unless a file or
/// directory of that name exists (reach one starting with <c>-</c> as <c>./-name</c>).</summary>
internal static class OptionLikeArguments
{
    public static void Refuse<T>(Argument<T> argument, bool pathsAllowed)
    {
        argument.Validators.Add(result =>
        {
            foreach (System.CommandLine.Parsing.Token token in result.Tokens)
            {
                string value = token.Value;
                if (value.Length > 1 && value[0] == '-' && !(pathsAllowed && (File.Exists(value) || Directory.Exists(value))))
                {
                    result.AddError($"unknown option '{value}'");
                }
            }
        });
    }
}
