using System.CommandLine;
using System.Globalization;
using System.Numerics;
using System.Text;

namespace Kvm.Cli.Commands;

/// <summary>
/// <c>kmem uptime</c>: how long the kernel had been up, and the load average, as uptime(1) prints them (FreeBSD's
/// usr.bin/w wording and <c>%.2f</c> averages on a FreeBSD image).
/// </summary>
internal static class UptimeCommand
{
    /// <summary>The kernel's fixed-point scale for <c>avenrun</c> (<c>FIXED_1</c>, 11 fraction bits).</summary>
    private const int Fixed1 = 1 << 11;

    public static Command Create(CliIo io)
    {
        var command = new Command("uptime", "Time since boot, boot time and load average");
        command.SetAction(parse => Program.Guard(parse, io, Run));
        return command;
    }

    private static int Run(CliContext ctx)
    {
        using var image = ctx.OpenImage();
        var clock = image.GetClock();
        var load = image.GetLoadAverage();
        if (ctx.IsJson)
        {
            JsonOutput.Write(ctx.Out, w =>
            {
                w.WriteStartObject();
                w.WriteNumber("uptimeSeconds", clock.Uptime.Ticks / (double)TimeSpan.TicksPerSecond);
                w.WriteString("bootTime", clock.BootTime?.ToString("o", CultureInfo.InvariantCulture));
                w.WriteStartArray("loadavg");
                foreach (var v in load.ToArray())
                {
                    w.WriteNumberValue(v);
                }

                w.WriteEndArray();
                if (load.TotalThreads is { } t)
                {
                    w.WriteNumber("threads", t);
                }
                else
                {
                    w.WriteNull("threads");
                }

                w.WriteEndObject();
            });
            return 0;
        }

        if (image.OperatingSystem == KernelOperatingSystem.FreeBsd)
        {
            // usr.bin/w/w.c: "load averages:" and each average through "%.2f".
            ctx.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"up {FormatUptime(clock.Uptime)}, load averages: {Printf2(load.One)}, {Printf2(load.Five)}, {Printf2(load.Fifteen)}"));
        }
        else
        {
            ctx.Out.WriteLine($"up {FormatUptime(clock.Uptime)}, load average: {LoadAverage(load.One)}, {LoadAverage(load.Five)}, {LoadAverage(load.Fifteen)}");
        }

        if (clock.BootTime is { } boot)
        {
            ctx.Out.WriteLine($"booted {boot.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)} UTC");
        }

        return 0;
    }

    /// <summary>
    /// The uptime as BSD uptime(1) words it: <c>N day(s),</c> then <c>H:MM</c>, or <c>N hr(s)</c>, <c>N min(s)</c>,
    /// or (a dump taken right after boot) <c>N sec(s)</c>.
    /// </summary>
    public static string FormatUptime(TimeSpan uptime)
    {
        long total = (long)uptime.TotalSeconds;
        long days = total / 86400, hours = total / 3600 % 24, minutes = total / 60 % 60, seconds = total % 60;
        var s = new StringBuilder();
        if (days > 0)
        {
            s.Append(CultureInfo.InvariantCulture, $"{days} day{(days == 1 ? string.Empty : "s")}, ");
        }

        if (hours > 0 && minutes > 0)
        {
            s.Append(CultureInfo.InvariantCulture, $"{hours}:{minutes:D2}");
        }
        else if (hours > 0)
        {
            s.Append(CultureInfo.InvariantCulture, $"{hours} hr{(hours == 1 ? string.Empty : "s")}");
        }
        else if (minutes > 0)
        {
            s.Append(CultureInfo.InvariantCulture, $"{minutes} min{(minutes == 1 ? string.Empty : "s")}");
        }
        else if (days == 0)
        {
            s.Append(CultureInfo.InvariantCulture, $"{seconds} sec{(seconds == 1 ? string.Empty : "s")}");
        }

        return s.ToString().TrimEnd(',', ' ');
    }

    /// <summary>
    /// A non-negative finite value as C's <c>printf("%.2f")</c> prints it: the exact binary value rounded to two
    /// decimals, a tie to even (what FreeBSD's libc does in the default rounding mode), not .NET's "F2".
    /// </summary>
    public static string Printf2(double value)
    {
        if (!double.IsFinite(value) || value < 0)
        {
            return value.ToString("F2", CultureInfo.InvariantCulture);
        }

        long bits = BitConverter.DoubleToInt64Bits(value);
        int exponent = (int)((bits >> 52) & 0x7ff);
        long mantissa = bits & 0xf_ffff_ffff_ffffL;
        if (exponent == 0)
        {
            exponent = 1;
        }
        else
        {
            mantissa |= 1L << 52;
        }

        exponent -= 1075;
        BigInteger numerator = mantissa * (BigInteger)100, denominator = BigInteger.One;
        if (exponent > 0)
        {
            numerator <<= exponent;
        }
        else
        {
            denominator <<= -exponent;
        }

        var hundredths = BigInteger.DivRem(numerator, denominator, out var remainder);
        var twice = remainder * 2;
        if (twice > denominator || (twice == denominator && !hundredths.IsEven))
        {
            hundredths++;
        }

        return string.Create(CultureInfo.InvariantCulture, $"{hundredths / 100}.{(int)(hundredths % 100):D2}");
    }

    /// <summary>
    /// Two decimals exactly as <c>/proc/loadavg</c> prints them: back to the fixed-point <c>avenrun</c> value, add
    /// <c>FIXED_1/200</c> (integer division: 10/2048, about 0.005) and truncate (<c>LOAD_INT</c>, <c>LOAD_FRAC</c>).
    /// </summary>
    public static string LoadAverage(double value)
    {
        long fixedPoint = (long)Math.Round(value * Fixed1) + Fixed1 / 200;
        long whole = fixedPoint >> 11;
        long fraction = ((fixedPoint & (Fixed1 - 1)) * 100) >> 11;
        return string.Create(CultureInfo.InvariantCulture, $"{whole}.{fraction:D2}");
    }
}
