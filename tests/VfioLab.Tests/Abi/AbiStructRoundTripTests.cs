using System.Buffers.Binary;
using System.Globalization;
using System.Reflection;
using VfioLab.Abi;

namespace VfioLab.Tests.Abi;

/// <summary>
/// Every struct of the project, generically: each field lands at its Offsets constant, padding is written as
/// zero, and reading the bytes back gives the same value.
/// </summary>
public sealed class AbiStructRoundTripTests
{
    public static TheoryData<Type> StructTypes() => [.. AllStructTypes()];

    private static Type[] AllStructTypes() =>
        [.. typeof(IAbiStruct<>).Assembly.GetTypes().Where(t => t.IsValueType
            && t.GetInterfaces().Any(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IAbiStruct<>)))];

    [Fact]
    public void StructTypes_EveryStructIsInAbiLayout()
    {
        var layoutNames = AbiLayout.Structs.Select(s => s.CName).ToHashSet();
        Type[] types = AllStructTypes();
        foreach (Type t in types)
        {
            Assert.Contains(CName(t), layoutNames);
        }
        Assert.Equal(layoutNames.Count, types.Length);
    }

    [Theory]
    [MemberData(nameof(StructTypes))]
    public void Write_DistinctFieldValues_EachFieldAtItsOffsetAndPaddingZero(Type type)
    {
        int size = SizeOf(type);
        object value = Fill(type, seed: 1);
        byte[] buffer = new byte[size + 8];
        Array.Fill(buffer, (byte)0xCC);

        Write(value, buffer);

        var covered = new bool[size];
        CheckFields(type, value, buffer, 0, covered);
        for (int i = 0; i < size; i++)
        {
            Assert.True(covered[i] || buffer[i] == 0, $"{type.Name}: padding byte {i} is 0x{buffer[i]:x2}, not 0");
        }
        Assert.All(buffer[size..], b => Assert.Equal(0xCC, b));
    }

    [Theory]
    [MemberData(nameof(StructTypes))]
    public void TryRead_BytesWrittenByWrite_ReturnsEqualValue(Type type)
    {
        object value = Fill(type, seed: 7);
        byte[] buffer = new byte[SizeOf(type)];
        Write(value, buffer);

        (bool ok, object read) = TryRead(type, buffer);

        Assert.True(ok);
        Assert.Equal(value, read);
    }

    [Theory]
    [MemberData(nameof(StructTypes))]
    public void TryRead_SpanOneByteShort_ReturnsFalse(Type type)
    {
        (bool ok, object read) = TryRead(type, new byte[SizeOf(type) - 1]);

        Assert.False(ok);
        Assert.Equal(Activator.CreateInstance(type), read);
    }

    [Theory]
    [MemberData(nameof(StructTypes))]
    public void Layout_FieldOffsets_MatchOffsetsClass(Type type)
    {
        AbiStructLayout layout = AbiLayout.Structs.Single(s => s.CName == CName(type));
        Type offsets = type.GetNestedType("Offsets")!;
        FieldInfo[] constants = offsets.GetFields(BindingFlags.Public | BindingFlags.Static);

        Assert.Equal(SizeOf(type), layout.SizeOf);
        Assert.Equal(constants.Length, layout.Fields.Count);
        Assert.Equal(constants.Select(c => (int)c.GetRawConstantValue()!), layout.Fields.Select(f => f.Offset));
    }

    internal static int SizeOf(Type type) => (int)type.GetField("SizeOf")!.GetRawConstantValue()!;

    private static string CName(Type type)
    {
        PropertyInfo layout = type.GetProperty("Layout", BindingFlags.NonPublic | BindingFlags.Static)!;
        return ((AbiStructLayout)layout.GetValue(null)!).CName;
    }

    private static FieldInfo[] DataFields(Type type) => type.GetFields(BindingFlags.Public | BindingFlags.Instance);

    private static int OffsetOf(Type type, string field) =>
        (int)type.GetNestedType("Offsets")!.GetField(field)!.GetRawConstantValue()!;

    /// <summary>A value whose every field has bytes distinct from its neighbours' and from zero.</summary>
    private static object Fill(Type type, int seed)
    {
        object value = Activator.CreateInstance(type)!;
        int n = seed;
        foreach (FieldInfo f in DataFields(type))
        {
            Type ft = f.FieldType;
            ulong pattern = 0x0102030405060708UL * (ulong)(n % 31 + 1) ^ (ulong)n << 56;
            object fieldValue = ft.IsEnum
                ? Enum.ToObject(ft, Truncate(Enum.GetUnderlyingType(ft), pattern))
                : ft.IsPrimitive ? Convert.ChangeType(Truncate(ft, pattern), ft) : Fill(ft, n * 5);
            f.SetValue(value, fieldValue);
            n++;
        }
        return value;
    }

    private static object Truncate(Type primitive, ulong pattern) => Type.GetTypeCode(primitive) switch
    {
        TypeCode.Byte => (byte)pattern,
        TypeCode.UInt16 => (ushort)pattern,
        TypeCode.UInt32 => (uint)pattern,
        TypeCode.Int32 => (int)(uint)pattern,
        TypeCode.UInt64 => pattern,
        _ => throw new NotSupportedException(primitive.Name),
    };

    private static void CheckFields(Type type, object value, byte[] buffer, int baseOffset, bool[] covered)
    {
        foreach (FieldInfo f in DataFields(type))
        {
            int offset = baseOffset + OffsetOf(type, f.Name);
            object fieldValue = f.GetValue(value)!;
            Type ft = f.FieldType.IsEnum ? Enum.GetUnderlyingType(f.FieldType) : f.FieldType;
            if (!ft.IsPrimitive)
            {
                CheckFields(ft, fieldValue, buffer, offset, covered);
                continue;
            }
            ulong expected = fieldValue is int i ? (uint)i : Convert.ToUInt64(fieldValue, CultureInfo.InvariantCulture);
            int width = System.Runtime.InteropServices.Marshal.SizeOf(ft);
            ulong actual = width switch
            {
                1 => buffer[offset],
                2 => BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(offset)),
                4 => BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(offset)),
                _ => BinaryPrimitives.ReadUInt64LittleEndian(buffer.AsSpan(offset)),
            };
            Assert.True(expected == actual, $"{type.Name}.{f.Name} at {offset}: wrote 0x{expected:x}, found 0x{actual:x}");
            covered.AsSpan(offset, width).Fill(true);
        }
    }

    private static void Write(object value, byte[] buffer) =>
        typeof(AbiStructRoundTripTests).GetMethod(nameof(WriteGeneric), BindingFlags.NonPublic | BindingFlags.Static)!
            .MakeGenericMethod(value.GetType()).Invoke(null, [value, buffer]);

    private static void WriteGeneric<T>(object value, byte[] buffer)
        where T : struct, IAbiStruct<T> => ((T)value).Write(buffer);

    private static (bool, object) TryRead(Type type, byte[] source)
    {
        MethodInfo method = typeof(AbiStructRoundTripTests).GetMethod(nameof(TryReadGeneric), BindingFlags.NonPublic | BindingFlags.Static)!
            .MakeGenericMethod(type);
        return ((bool, object))method.Invoke(null, [source])!;
    }

    private static (bool, object) TryReadGeneric<T>(byte[] source)
        where T : struct, IAbiStruct<T>
    {
        bool ok = AbiStruct.TryRead(source, out T value);
        return (ok, value);
    }
}
