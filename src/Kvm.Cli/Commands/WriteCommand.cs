using System.CommandLine;

namespace Kvm.Cli.Commands;

/// <summary><c>kmem -w write ADDR HEXBYTES</c>: write bytes into kernel memory of an image opened for writing.</summary>
internal static class WriteCommand
{
    public static Command Create(CliIo io)
    {
        var address = new Argument<string>("address") { Description = "Address (0x…), or symbol with optional +offset" };
        var bytes = new Argument<string>("hexbytes") { Description = "Bytes as hex, e.g. 90909090" };
        var phys = new Option<bool>("--phys") { Description = "Write physical memory" };
        var command = new Command("write", "Write bytes into kernel memory (needs -w)");
        command.Arguments.Add(address);
        command.Arguments.Add(bytes);
        command.Options.Add(phys);
        command.SetAction(parse => Program.Guard(parse, io, ctx => Run(ctx, parse.GetValue(address)!, parse.GetValue(bytes)!, parse.GetValue(phys))));
        return command;
    }

    private static int Run(CliContext ctx, string addressText, string hex, bool phys)
    {
        if (!ctx.IsWritable)
        {
            throw new ArgumentException("write needs the image opened for writing: add -w");
        }

        byte[] data;
        try
        {
            data = Convert.FromHexString(hex.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? hex[2..] : hex);
        }
        catch (FormatException)
        {
            throw new ArgumentException($"bad hex bytes '{hex}'");
        }

        using var image = ctx.OpenImage();
        ulong address = AddressExpression.Resolve(addressText, image);
        if (phys)
        {
            image.WritePhysical(address, data);
        }
        else
        {
            image.Write(address, data);
        }

        if (ctx.IsJson)
        {
            JsonOutput.Write(ctx.Out, w =>
            {
                w.WriteStartObject();
                w.WriteString("address", JsonOutput.Hex(address));
                w.WriteBoolean("physical", phys);
                w.WriteNumber("written", data.Length);
                w.WriteEndObject();
            });
        }
        else
        {
            ctx.Out.WriteLine($"wrote {data.Length} bytes at {address:x16}");
        }

        return 0;
    }
}
